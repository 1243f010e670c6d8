"""One spelling for words that documents and questions write in several ways.

Keyword search, the evidence's term coverage and the check that a question's figures are in the
passages all compare words; a diplomat's question and a regulation rarely spell them alike. Both
sides go through `normalise` before they are compared, so that each pair below meets:

- a demonym and its country: "the Korean ambassador" ~ "the Republic of Korea";
- British and American spellings: "organisation" ~ "organization", "licence" ~ "license";
- figures with any thousands separator: "35,000,000" ~ "35 000 000"; figures in words: "seven" ~ "7".

Normalising only ever merges spellings, on both sides alike: a question and a passage that used
the same word still meet.

    >>> normalise("The Korean ambassador's organisation paid EUR 35,000,000, or seven million")
    "The korea ambassador's organization paid EUR 35000000, or 7000000"
    >>> normalise("The Uruguayan ambassador named a Latin American capital, in English")
    'The uruguay ambassador named a latin america capital, in English'
"""

from __future__ import annotations

import re

# Adjective or demonym -> the country's name as documents write it (lower case). Regular forms
# ("Kenyan" ~ "Kenya", "Malaysian" ~ "Malaysia") are listed too: a suffix rule would also turn
# "Asian" into "Asia" and "Christian" into "Christ".
DEMONYMS = {
    # A region's adjective before the country's that it contains: "Latin American" is not "Latin United States".
    "latin american": "latin america", "south american": "south america", "north american": "north america",
    "central american": "central america",
    "afghan": "afghanistan", "albanian": "albania", "algerian": "algeria", "american": "united states",
    "andorran": "andorra", "angolan": "angola", "argentine": "argentina", "argentinian": "argentina",
    "armenian": "armenia", "australian": "australia", "austrian": "austria", "azerbaijani": "azerbaijan",
    "bahamian": "bahamas", "bahraini": "bahrain", "bangladeshi": "bangladesh", "barbadian": "barbados",
    "belarusian": "belarus", "belgian": "belgium", "belizean": "belize", "beninese": "benin", "bhutanese": "bhutan",
    "bolivian": "bolivia", "bosnian": "bosnia", "botswanan": "botswana", "brazilian": "brazil",
    "british": "united kingdom", "bruneian": "brunei", "bulgarian": "bulgaria", "burkinabe": "burkina faso",
    "burmese": "myanmar", "burundian": "burundi", "cambodian": "cambodia", "cameroonian": "cameroon",
    "canadian": "canada", "chadian": "chad", "chilean": "chile", "chinese": "china", "colombian": "colombia",
    "comorian": "comoros", "congolese": "congo", "costa rican": "costa rica", "croatian": "croatia", "cuban": "cuba",
    "cypriot": "cyprus", "czech": "czechia", "danish": "denmark", "djiboutian": "djibouti", "dutch": "netherlands",
    "ecuadorian": "ecuador", "egyptian": "egypt", "emirati": "united arab emirates", "eritrean": "eritrea",
    "estonian": "estonia", "ethiopian": "ethiopia", "fijian": "fiji", "filipino": "philippines",
    "finnish": "finland", "french": "france", "gabonese": "gabon", "gambian": "gambia", "georgian": "georgia",
    "german": "germany", "ghanaian": "ghana", "greek": "greece", "grenadian": "grenada", "guatemalan": "guatemala",
    "guinean": "guinea", "guyanese": "guyana", "haitian": "haiti", "honduran": "honduras", "hungarian": "hungary",
    "icelandic": "iceland", "indian": "india", "indonesian": "indonesia", "iranian": "iran", "iraqi": "iraq",
    "irish": "ireland", "israeli": "israel", "italian": "italy", "ivorian": "côte d'ivoire", "jamaican": "jamaica",
    "japanese": "japan", "jordanian": "jordan", "kazakh": "kazakhstan", "kenyan": "kenya", "korean": "korea",
    "kuwaiti": "kuwait", "kyrgyz": "kyrgyzstan", "lao": "laos", "laotian": "laos", "latvian": "latvia",
    "lebanese": "lebanon", "liberian": "liberia", "libyan": "libya", "lithuanian": "lithuania",
    "luxembourgish": "luxembourg", "malagasy": "madagascar", "malawian": "malawi", "malaysian": "malaysia",
    "maldivian": "maldives", "malian": "mali", "maltese": "malta", "mauritanian": "mauritania",
    "mauritian": "mauritius", "mexican": "mexico", "moldovan": "moldova", "monegasque": "monaco",
    "mongolian": "mongolia", "montenegrin": "montenegro", "moroccan": "morocco", "mozambican": "mozambique",
    "namibian": "namibia", "nepalese": "nepal", "nepali": "nepal", "new zealander": "new zealand",
    "nicaraguan": "nicaragua", "nigerian": "nigeria", "nigerien": "niger", "norwegian": "norway", "omani": "oman",
    "pakistani": "pakistan", "palestinian": "palestine", "panamanian": "panama", "paraguayan": "paraguay",
    "peruvian": "peru", "polish": "poland", "portuguese": "portugal", "qatari": "qatar", "romanian": "romania",
    "russian": "russia", "rwandan": "rwanda", "salvadoran": "el salvador", "samoan": "samoa",
    "saudi": "saudi arabia", "senegalese": "senegal", "serbian": "serbia", "sierra leonean": "sierra leone",
    "singaporean": "singapore", "slovak": "slovakia", "slovenian": "slovenia", "somali": "somalia",
    "spanish": "spain", "sri lankan": "sri lanka", "sudanese": "sudan", "surinamese": "suriname",
    "swedish": "sweden", "swiss": "switzerland", "syrian": "syria", "tajik": "tajikistan", "tanzanian": "tanzania",
    "thai": "thailand", "togolese": "togo", "tongan": "tonga", "trinidadian": "trinidad and tobago",
    "tunisian": "tunisia", "turkish": "turkey", "turkmen": "turkmenistan", "ugandan": "uganda",
    "ukrainian": "ukraine", "uruguayan": "uruguay", "uzbek": "uzbekistan", "venezuelan": "venezuela",
    "vietnamese": "viet nam", "yemeni": "yemen", "zambian": "zambia", "zimbabwean": "zimbabwe",
    "welsh": "wales", "scottish": "scotland", "european": "europe", "african": "africa",
}
_DEMONYM = re.compile(r"\b(" + "|".join(name.replace(" ", r"\s+") for name in DEMONYMS) + r")s?\b", re.IGNORECASE)
# What a demonym may name that is no country: "Latin American", "European", "African".
_REGIONS = {"latin america", "south america", "north america", "central america", "europe", "africa"}
# A country's name, once `normalise` has turned its demonym into it ("the Korean mission" -> "korea").
_COUNTRY = re.compile(
    r"\b(?:" + "|".join(re.escape(c) for c in sorted(set(DEMONYMS.values()) - _REGIONS, key=len, reverse=True)) + r")\b",
    re.IGNORECASE,
)
# British endings -> American, for the word families where the two differ regularly.
_SPELLINGS = [
    (re.compile(r"(?<=[a-z]{3})is(e|es|ed|ing|ation|ations|ational)\b"), r"iz\1"),  # organise, harmonisation
    (re.compile(r"(?<=[a-z]{3})ys(e|es|ed|ing)\b"), r"yz\1"),  # analyse
    (re.compile(r"(?<=[a-z]{2}[^aeiou])our(s|ed|ing|able)?\b"), r"or\1"),  # behaviour, favourable
    (re.compile(r"(?<=[a-z]{3}[^aeiou])re(s)?\b"), r"er\1"),  # centre, metres
    (re.compile(r"\b(licen|defen|offen)ce(s)?\b"), r"\1se\2"),
    (re.compile(r"(?<=[a-z]{3})ogue(s)?\b"), r"og\1"),  # catalogue, dialogue
]
_GROUPED = re.compile(r"(?<![\d.,])\d{1,3}(?:(?:,|\u202f|\u00a0| )\d{3})+(?![\d])")  # "35,000,000", "35 000 000"
_UNITS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
          "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
          "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
          "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_NUMBER_WORDS = re.compile(
    rf"\b(?:{'|'.join(_UNITS)})(?:[\s-](?:{'|'.join(_UNITS)}|{'|'.join(_SCALES)}|and))*\b"
    rf"|\b\d+(?:\.\d+)?\s(?:{'|'.join(_SCALES)})\b",
    re.IGNORECASE,
)


def _spell_number(words: str) -> str:
    """A number written in words, as digits: "thirty-five million" -> "35000000"."""
    total, current = 0, 0.0
    for word in re.split(r"[\s-]+", words.lower()):
        if word in _UNITS:
            current += _UNITS[word]
        elif word in _SCALES:
            current = (current or 1) * _SCALES[word]
            if _SCALES[word] >= 1000:
                total, current = total + int(current), 0
        elif word != "and":
            current += float(word)
    return str(int(total + current))


def normalise(text: str) -> str:
    """The text with demonyms, British spellings and written-out or grouped figures in one form."""
    text = _DEMONYM.sub(lambda m: DEMONYMS[' '.join(m.group(1).lower().split())], text)
    for pattern, american in _SPELLINGS:
        text = pattern.sub(american, text)
    text = _GROUPED.sub(lambda m: re.sub(r"\D", "", m.group()), text)
    return _NUMBER_WORDS.sub(lambda m: _spell_number(m.group()), text)


def names_country(text: str) -> bool:
    """Whether the text names a country, by its name or by its demonym.

    >>> names_country("The Korean mission supports it."), names_country("Registries help regulators."), names_country("Latin American capitals")
    (True, False, False)
    """
    return bool(_COUNTRY.search(normalise(text)))


def stated_figures(text: str) -> list[str]:
    """The figures a text states, in `normalise`'s form, leaving out the counts written as one small word.

    "Which two risks ...?" and "one of the speakers" count what a question asks for; a figure in
    digits or with a scale ("EUR 35,000,000", "thirty-five million") states a fact.

    >>> stated_figures("Which two risks, one of them costing thirty-five million, arose in 2031?")
    ['35000000', '2031']
    """
    framed = _NUMBER_WORDS.sub(lambda m: "" if _UNITS.get(m.group().lower(), 13) < 13 else m.group(), text)
    return re.findall(r"\d+(?:[.,]\d+)*", normalise(framed))
