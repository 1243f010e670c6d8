"""What a question asks for, and whether a sentence states it.

Both the retrieve stage and the answer stage read the question the same way: its kind (a date for
"When ...?", a figure for "How many ...?", a venue for "Where was it held?", a name for "Who ...?"),
the thing it names ("What *insurance* ...?") and its terms without the words that frame it. Retrieval
ranks passages that state the asked kind first; answering ranks sentences so and refuses when none
of the best does.
"""

from __future__ import annotations

import re

from assistant.sentences import TITLES, split_sentences
from assistant.store import keyword_tokens
from assistant.wording import names_country

NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# What a follow-up's rewrite puts before the question it leans on (see `conversation`): a mark, not a word asked.
FOLLOWING = " (following: "
# A capitalised word inside the question (not its first word): a name, an acronym, a place.
NAME = re.compile(r"(?<!^)(?<![.?!:] )\b([A-Z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*)")
# What a question asks for, when its wording says so, and what a sentence that answers it contains.
_ASKS_QUANTITY = re.compile(r"\bhow (?:many|much)\b|\bwhat (?:percentage|proportion|share|number|amount|figure)\b", re.IGNORECASE)
_CALENDAR = r"\b(?:what|which)(?: exact| precise)? (?:date|day|year|month)\b"  # asks for a date, not a clock time
_ASKS_CALENDAR = re.compile(_CALENDAR, re.IGNORECASE)
# "When is a system *considered* high-risk?" asks for a condition, not a date.
_NOT_A_CONDITION = r"(?!.*\b(?:considered|deemed|regarded|classified|treated as|permitted|allowed|exempt(?:ed)?)\b)"
# "When the participants talked about X, what did they flag?" sets a scene: its question comes after the comma.
_SCENE = r"(?![^?]*,\s*(?:what|which|who|whom|whose|how|where|why)\b)"
_ASKS_DATE = re.compile(
    rf"^(?:by |from |since |until )?when\b{_NOT_A_CONDITION}{_SCENE}|{_CALENDAR}|\bat what time\b", re.IGNORECASE
)
_ASKS_DURATION = re.compile(r"\bhow long\b", re.IGNORECASE)
# "Where was the meeting held?" asks for a venue; "Where must providers register?" does not.
_ASKS_PLACE = re.compile(
    r"\bwhere\b.*\b(?:held|take place|took place|located|hosted|venue)\b|\b(?:what|which) (?:venue|city|address)\b",
    re.IGNORECASE,
)
# "Who moderates?", "Under whose byline ...?", "If I have questions, whom do I contact?", "Which
# countries have joined?": answered by a name, a capitalised word that the question does not already use.
_ASKS_NAME = re.compile(
    r"(?:^|,\s+)(?:\w+\s+){0,2}(?:who|whom|whose)\b|\bnames? of\b|\bwhat (?:are|is) the names?\b"
    r"|\bwhich (?:countr|organi[sz]ation|member state|compan|institution|person|official|nation|government)"
    r"|^which [\w\s-]+? (?:is|are|was|were) (?:named|cited|mentioned)\b",  # "Which provider is named in ...?"
    re.IGNORECASE,
)
_ASKS_COUNTRY = re.compile(r"\b(?:which|what) (?:countr|nation|member state|state)", re.IGNORECASE)  # answered by a country's name
# Mid-sentence (not after a colon, a stop or a table bar), or after a title ("Prof. Asante-Darko presented ...").
_CAPITALISED = re.compile(r"(?:(?<=[\w,)] )|" + "|".join(rf"(?<={re.escape(title)}\. )" for title in TITLES) + r")[A-Z][\w-]*")
_HAS_PLACE = re.compile(r"\b(?:Venue|Street|Avenue|Road|Plaza|Square|Boulevard|Floor|Headquarters)\b")
_MONTH = "January|February|March|April|May|June|July|August|September|October|November|December"
_COUNT_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundred|"
    "thousand|million|billion|trillion|half|third|quarter|dozen"
)
_ORDINALS = "first|second|fourth|fifth|sixth|seventh|eighth|ninth|tenth|twelfth|twentieth|thirtieth"
# A date or a counted time relative to an event ("on the twentieth day following", "six-month"); a
# bare unit ("the year ahead"), a length of time ("for a period of 10 years") and the year of a
# reference number ("Regulation (EU) 2024/1689") date nothing. A clock time ("13:30", "within 24
# hours") answers "When ...?" but not "On what date ...?".
_HAS_DATE = re.compile(
    rf"\b(?:{_MONTH})\b|(?<!/)\b(?:19|20)\d\d\b(?!/\d)"
    rf"|(?i:(?<!\bfor )(?<!period of )(?:\b\d+|\b(?:{_COUNT_WORDS}|{_ORDINALS}))[\s-](?:calendar |working )?(?:days?|weeks?|months?|years?))\b"
)
# A length of time, which answers "How long ...?": "within 24 hours", "at least six months", "a period of 10 years".
_HAS_DURATION = re.compile(rf"(?i:(?:\b\d+|\b(?:{_COUNT_WORDS}))[\s-](?:calendar |working )?(?:hours?|days?|weeks?|months?|years?))\b")
_CLOCK = r"\b\d{1,2}[:.]\d{2}\b"  # "13:30", "8.30"
_HAS_TIME = re.compile(rf"{_CLOCK}|(?i:(?:\b\d+|\b(?:{_COUNT_WORDS}))[\s-]hours?)\b")
_NUMBER_WORD = re.compile(rf"\b(?:{_COUNT_WORDS})\b", re.IGNORECASE)
_HOW_MANY = re.compile(r"\bhow many\s+([A-Za-z-]+)", re.IGNORECASE)
# Figures that count nothing: clock times, days of a month, ordinals, references ("paragraph 3",
# "Article 6(1)", "Articles 5, 6 and 7", "No 1025/2012", "OJ L 176, 27.6.2013, p. 1"), street numbers.
_NOT_A_COUNT = re.compile(
    rf"{_CLOCK}|\b\d{{1,2}}\s+(?:{_MONTH})\b|\b(?:{_MONTH})\s+\d{{1,2}}\b|\b\d+(?:st|nd|rd|th)\b"
    r"|\b(?:(?i:articles?|paragraphs?|points?|annex|chapter|section|recitals?|regulation|directive)|No\.?)\s+[\d()/]+"
    r"(?:(?:,\s*|\s+)(?:(?:and|or|to)\s+)?[\d()/]+\b)*"  # and the rest of a list: "Articles 5, 6, and 7"
    r"|\bOJ [LC] \d+|\bp\. \d+|\b\d{1,2}\.\d{1,2}\.\d{4}\b"  # an Official Journal reference: "OJ L 176, 27.6.2013, p. 1"
    rf"|\b(?:\d+|(?i:{_COUNT_WORDS}))\s+(?:[A-Z0-9][\w-]*\s+){{0,3}}(?:Avenue|Street|Road|Plaza|Square|Boulevard)\b"
)
# The thing a question asks for: the head of the noun phrase after "What"/"Which" ("What is the
# *salary* of ...", "Which football *club* ...", "What *insurance* must ...") or "How much" ("How much
# *funding* ..."). After "What does/did/must" the phrase is the question's subject, not what it asks.
_DET = "the|a|an|its|their|this|these|his|her"
_PHRASE_END = rf"of|in|for|on|at|to|that|from|by|with|about|under|between|among|according|up|out|and|or|{_DET}|is|are|was|were|will|be|did|does|do|has|have|had|can|could|should|must|may|might|would|shall"
_ASKED_THING = re.compile(
    rf"^(?:(?:on|in|at|by|from|for|to|under|with) )?(?:what|which)(?: (?:is|are|was|were|will))?(?: (?:{_DET}))?"
    rf"((?: (?!(?:{_PHRASE_END})\b)[\w'-]+){{1,4}}?)(?= (?:{_PHRASE_END})\b|\?|,)"
    r"|^how much ([a-z]+) (?:did|does|do|is|was|will)\b",
    re.IGNORECASE,
)
# "How does the EU AI Act *tax* companies ...?", "Why did the OECD *decide* ...?": the act asked
# about, after a subject that is a name. ("How do remote tools change ...?" is not read: without
# capitals the subject's end is unknown.)
_ASKED_ACT = re.compile(
    r"^(?i:how|why) (?i:does|do|did|will|would|can|could|should|must|may|might|shall)(?: (?:the|its|their))?"
    r"(?: [A-Z][\w'’-]*)+ ([a-z][\w-]*)"
)
# "How will members of the Panel *be paid*?", "How is the Board *composed*?": the passive's
# participle is the act asked about.
_ASKED_PASSIVE = re.compile(
    r"^(?i:how) (?:(?i:is|are|was|were) .+?|(?i:will|would|can|could|should|must|may|might|shall) .+? be) "
    r"(?!(?:between|often|even|open|when|then|than|given)\b)([a-z]+(?:ed|en)|paid|made|held|set|run|led|built|chosen|known|meant|kept)\b"
)
# A verb that ends the phrase early: "Which organisation *produced* ...", "Which phases *make up* ...".
_VERB = re.compile(r"\w+ed|(?:make|appl(?:y|ie)|speak|sit|take|give|say|lead|hold|use|run|play|represent|concern|require|include|mention)s?|won|sat|led", re.IGNORECASE)
# Nouns that name the part an answer plays, not its content: "What *purpose* does the article give
# for aligning audits?" is answered by "to prevent regulatory arbitrage", "What *position* does Jo
# Hironaka hold?" by a job title, "What *duty* do providers have?" by a "shall" clause; and nouns
# that stand for items of any kind: "Which deployment *areas* does the article give as *examples*?"
# is answered by "healthcare, finance and law enforcement", "What *steps* have governments taken?"
# by "establishing dedicated AI units". They are neither the thing asked nor terms the evidence
# must cover.
ROLE_WORDS = frozenset(keyword_tokens(
    "purpose aim goal objective role position title function task duty format label term "
    "area step example way measure action aspect element factor"
))
# Words that frame a question ("what does the article say", "tell me", "I need the name of", "what
# kind of") rather than name what it asks about; passages that answer it rarely repeat them.
_FRAME_TERMS = frozenset(keyword_tokens(
    "say says said according mention mentioned describe described give gives gave given refer refers "
    "call called mean meant kind type exactly roughly already under over out both like must "
    "tell me need want know please explain name named list many much whose whom"
))
# Words that name the form of the answer, which `asked_kind` checks ("On what date ...?" is answered
# by "5 May 2026", not by the word "date").
FORM_WORDS = frozenset(keyword_tokens(
    "date day year time month number figure percentage share proportion amount venue city address place kind type sort"
))
# Verbs that ask about their object, not about themselves: "How does the AI Act *define* ...?".
_SAYING_TERMS = _FRAME_TERMS | frozenset(keyword_tokens("define recommend suggest propose"))


def question_terms(question: str) -> set[str]:
    """The keyword terms of what a question asks about, without the words that frame it.

    >>> sorted(question_terms("What does the article say about fines under the AI Act?"))
    ['act', 'ai', 'articl', 'fine']
    >>> sorted(question_terms("How much did they pledge? (following: Who funds the facility?)"))
    ['facil', 'fund', 'pledg']
    """
    return set(keyword_tokens(question.replace(FOLLOWING, " ("))) - _FRAME_TERMS


def name_terms(question: str) -> set[str]:
    """The keyword terms of the names a question uses (see `NAME`).

    >>> sorted(name_terms("When does the EU AI Act apply to providers?"))
    ['act', 'ai', 'eu']
    """
    return {term for name in NAME.findall(question) for term in keyword_tokens(name)}


def said_terms(question: str) -> set[str]:
    """What a question says of the thing it asks for: its terms without names, frame or form words.

    >>> sorted(said_terms("From what date does the EU AI Act generally apply?"))
    ['appli', 'general']
    """
    return question_terms(question) - name_terms(question) - FORM_WORDS


def asked_kind(question: str) -> str | None:
    """`quantity`, `duration`, `date`, `place` or `name` when the question's wording asks for one, else None.

    >>> asked_kind("How many experts sit on the panel?"), asked_kind("When does it apply?"), asked_kind("Why?")
    ('quantity', 'date', None)
    >>> asked_kind("For how long must logs be kept?")
    'duration'
    >>> asked_kind("Where was the meeting held?"), asked_kind("Where must providers register?")
    ('place', None)
    >>> asked_kind("When is the meeting held?"), asked_kind("When is a system not considered high-risk?")
    ('date', None)
    >>> asked_kind("When the article talks about risk tiers, which fields does it name?"), asked_kind("Under whose byline?")
    (None, 'name')
    """
    if _ASKS_QUANTITY.search(question):
        return "quantity"
    if _ASKS_DURATION.search(question):
        return "duration"
    if _ASKS_DATE.search(question):
        return "date"
    if _ASKS_PLACE.search(question):
        return "place"
    if _ASKS_NAME.search(question):
        return "name"
    return None


def asked_thing(question: str) -> str | None:
    """The noun a "What X"/"Which X"/"How much X" question asks for, unless it names the answer's form.

    A near-miss question shares its topic with the passages and misses only in this word: "What
    insurance must providers of high-risk AI systems take out?" covers every other term of an EU AI
    Act passage on providers. A noun that names the answer's role (`ROLE_WORDS`: "What *purpose*
    ...?") is no thing: the answer gives the purpose without the word. Other nouns may be answered
    without being repeated too ("Which deployment *areas*?"), so a missing thing lowers the evidence
    score rather than refusing outright.

    "How/Why does <Name> VERB ...?" asks about the act: "How does the EU AI Act *tax* companies?",
    and so does a passive: "How will members of the Panel *be paid*?".
    A verb of saying or defining asks about its object instead, so it names no thing. The first
    lowercase word after the name is taken for the verb; where it is a noun ("How do the CPA
    *concept* note and ... differ?") it belongs to the subject, which the passages found name.

    >>> asked_thing("What is the salary of the head of the AI Office?"), asked_thing("Which organisation produced it?")
    ('salary', 'organisation')
    >>> asked_thing("What did the Co-Chairs commit to?"), asked_thing("On what date was it held?")
    (None, None)
    >>> asked_thing("How does the EU AI Act tax companies?"), asked_thing("How does the AI Act define 'deployer'?")
    ('tax', None)
    >>> asked_thing("How will members of the Panel be paid?"), asked_thing("How are the principles meant to be read?")
    ('paid', None)
    """
    act = _ASKED_ACT.match(question) or _ASKED_PASSIVE.match(question)
    if act:
        stems = keyword_tokens(act.group(1))
        return act.group(1) if stems and not set(stems) & _SAYING_TERMS else None
    found = _ASKED_THING.match(question)
    if not found:
        return None
    words = (found.group(1) or found.group(2)).split()
    verb = next((i for i, word in enumerate(words[1:], 1) if _VERB.fullmatch(word)), len(words))
    stems = keyword_tokens(words[verb - 1])
    return words[verb - 1] if stems and stems[-1] not in FORM_WORDS | ROLE_WORDS else None


def names_thing(text: str, thing: str) -> bool:
    """Whether `text` names the thing asked: that word, inflected ("fines", "taxed") or not.

    A stem would take "critical" for "criticism" and "generally" for "general"; a passage that
    answers uses the word itself.

    >>> names_thing("Countries that joined", "country"), names_thing("Nothing is taxed", "tax")
    (True, True)
    >>> names_thing("a critical review", "criticism")
    False
    """
    word = thing.lower().strip("'’")
    if word.endswith(("ies", "y")):
        root, endings = re.sub(r"(?:ies|y)$", "", word), "(?:y|ies|ied|ying)"
    else:
        root, endings = re.sub(r"(?<!s)s$", "", word), "(?:s|es|d|ed|ing)?"
    return re.search(rf"\b{re.escape(root)}{endings}\b", text, re.IGNORECASE) is not None


def _says_what_question_says(sentence: str, question: str) -> bool:
    """Whether the sentence shares a term of what the question says (`said_terms`), if it says anything."""
    said = said_terms(question)
    return not said or bool(said & set(keyword_tokens(sentence)))


def states_kind(sentence: str, kind: str | None, question: str) -> bool:
    """Whether the sentence states a quantity, a length of time, a date, a place (a venue, an address) or a name.

    A quantity is a figure other than a year, a date, a clock time, an ordinal, a reference, a
    street number or a figure the question gave: "13:30 on 5 May 2026", "the 11th Forum", "the
    tasks in paragraph 3", "885 2nd Avenue" count nothing. "How many experts...?" asks for a count
    of experts: the figure must come within four words before "experts". A quantity, like a name,
    comes with what the question says of it: "How much did Meta invest?" is not answered by a
    figure on the global economy.

    >>> states_kind("Around 2% of research is African.", "quantity", "What share?")
    True
    >>> states_kind("The panel was set up in 2025.", "quantity", "How many experts?")
    False
    >>> states_kind("It follows Articles 5, 6, and 7 of Regulation (EU) No 1025/2012.", "quantity", "How much?")
    False
    >>> states_kind("AI could add USD 15.7 trillion to the global economy.", "quantity", "How much did Meta invest?")
    False
    >>> states_kind("Keep it for a period of 10 years.", "date", "From when?"), states_kind("Notify within two weeks.", "date", "When?")
    (False, True)
    >>> states_kind("Keep it for a period of 10 years.", "duration", "How long?")
    True
    >>> states_kind("Registries allow regulators to share findings.", "name", "Which countries joined?")
    False
    >>> states_kind("The event is supported by Japan.", "name", "Which country supports the event?")
    True
    >>> states_kind("Public-private Partnerships support the event.", "name", "Which country supports the event?")
    False
    >>> states_kind("The Panel and the Global Dialogue were launched.", "name", "Who will chair the Global Dialogue?")
    False
    >>> states_kind("Prof. Asante-Darko presented the study.", "name", "Who presented the study?")
    True
    """
    if kind == "duration":
        return bool(_HAS_DURATION.search(sentence))
    if kind == "date":
        return bool(_HAS_DATE.search(sentence) or (not _ASKS_CALENDAR.search(question) and _HAS_TIME.search(sentence)))
    if kind == "place":
        return bool(_HAS_PLACE.search(sentence))
    if kind == "name":
        # The name must come with what the question says of it: "Who will chair the second meeting of
        # the Global Dialogue?" is not answered by a sentence naming the Scientific Panel beside it.
        # ("Who is Kenya's Permanent Representative?" says nothing of it but names.)
        if not _says_what_question_says(sentence, question):
            return False
        if _ASKS_COUNTRY.search(question) and not names_country(sentence):
            return False  # "Which countries have joined?" is not answered by "Public-private Partnerships"
        used = set(keyword_tokens(question))
        return any(set(keyword_tokens(word)) - used for word in _CAPITALISED.findall(sentence))
    if kind == "quantity":
        if not _says_what_question_says(sentence, question):
            return False
        given = set(NUMBER.findall(question))
        asked = _HOW_MANY.search(question)
        counted = keyword_tokens(asked.group(1)) if asked else []  # "How many experts": a count of experts
        words = _NOT_A_COUNT.sub(" ", sentence).split()
        for position, word in enumerate(words):
            figure = NUMBER.match(word.strip("([~<>€$£"))
            if figure and (figure.group() in given or re.fullmatch(r"(?:19|20)\d\d", figure.group())):
                figure = None
            if (figure or _NUMBER_WORD.fullmatch(word.strip(".,;:()"))) and (
                not counted or counted[0] in keyword_tokens(" ".join(words[position + 1 : position + 5]))
            ):
                return True
    return False


def passage_states_kind(text: str, kind: str, question: str) -> bool:
    """Whether a sentence of the passage states the asked kind beside what the question says.

    "From what date does the Act apply?" is answered by "It shall apply from 2 August 2026", not
    by the date in the Act's title. "Beside" takes in the sentences before and after: a meeting's
    venue is a line of its own under the meeting's title. A question that says nothing but names
    takes any sentence.

    >>> question = "From what date does the EU AI Act generally apply?"
    >>> passage_states_kind("Regulation of 13 June 2024 on AI. It shall apply from 2 August 2026.", "date", question)
    True
    >>> passage_states_kind("Regulation (EU) 2024/1689 of 13 June 2024 laying down rules on AI.", "date", question)
    False
    >>> passage_states_kind("## Multilateral AI Diplomacy\\n320 E 43rd Street", "place", "Where did the diplomacy meeting take place?")
    True
    """
    said = said_terms(question)
    sentences = split_sentences(text)
    for i, sentence in enumerate(sentences):
        if states_kind(sentence, kind, question):
            near = " ".join(sentences[max(i - 1, 0) : i + 2])
            if not said or said & set(keyword_tokens(near)):
                return True
    return False
