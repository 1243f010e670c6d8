"""Evidence stage: do the passages found answer the question? One calibrated probability says.

A few features that do not depend on how the question is worded are measured on the best passages
and on their best sentences (as the rerank stage scored them); a logistic model turns them into
the probability that the question is answerable from those passages. The model's coefficients are
fitted on the dev split of the QA set, never on the test split (`python -m assistant calibrate
evals/governance_qa.jsonl evals/briefing_qa.jsonl --write`); the threshold below which the
assistant refuses follows from what its two errors cost (see `calibration.threshold_for`). Both are
kept in `refusal_model.json` beside this module with the calibration that made them.

The one refusal the model cannot overrule: a figure or date the question itself states that no
passage holds ("What did the Panel decide in 2031?").

    >>> model = RefusalModel(weights={"coverage": 4.0}, bias=-2.0, threshold=0.5)
    >>> round(model.probability({"coverage": 1.0}), 3), round(model.probability({"coverage": 0.25}), 3)
    (0.881, 0.269)

A document's place in an answer across documents has its own weights, when calibration fitted them:

    >>> model.document_probability({"coverage": 0.25}) == model.probability({"coverage": 0.25})
    True
    >>> round(RefusalModel({}, 0.0, 0.5, 0.5, {"coverage": 8.0}, -1.0).document_probability({"coverage": 0.25}), 3)
    0.731
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from llama_index.core.schema import NodeWithScore

from assistant.embedding import SentenceTransformerEmbedding
from assistant.questions import (
    FORM_WORDS,
    NAME,
    NUMBER,
    asked_kind,
    asked_thing,
    name_terms,
    names_thing,
    question_terms,
)
from assistant.retrieval import unnamed
from assistant.store import keyword_tokens
from assistant.wording import normalise, stated_figures

BUNDLED_MODEL = Path(__file__).with_name("refusal_model.json")
# The features, each in [0, 1] (see `measure`).
FEATURES = ("similarity", "best_similarity", "coverage", "rare_coverage", "thing_unnamed", "kind_missing", "unknown_names")
# What tells the documents of one question apart: `unknown_names` is the question's own, alike for
# every document searched, so it says nothing of which of them speaks to the point.
DOCUMENT_FEATURES = tuple(name for name in FEATURES if name != "unknown_names")
KIND_WINDOW = 3  # the asked kind (a date, a figure, a name) is looked for among this many best sentences
READ_PASSAGES = 3  # the best passages whose words count as covering the question's
# How close (cosine, each word embedded alone) a word of the passages must lie to a word of the
# question to say it in other words ("employees" ~ "workers" 0.85, "pictures" ~ "images" 0.81).
PARAPHRASE_SIMILARITY = 0.7
_WORD = re.compile(r"[a-z]+(?:-[a-z]+)*")


class Vocabulary(Protocol):
    """What the index knows of a keyword token (see `ChunkStore`)."""

    def knows(self, term: str) -> bool: ...

    def rarity(self, term: str) -> float: ...


class Sentence(Protocol):
    """A scored answer sentence, as the rerank stage produces it (see `reranking.Candidate`)."""

    passage: int
    similarity: float
    states_asked: bool


@dataclass
class Evidence:
    """The features of the passages found for one question, and what the model makes of them."""

    features: dict[str, float]
    missing: list[str] = field(default_factory=list)  # figures the question states and no passage holds
    uncovered: list[str] = field(default_factory=list)  # the question's words the passages never say, rarest first
    probability: float = 0.0

    def sufficient(self, threshold: float) -> bool:
        return not self.missing and self.probability >= threshold

    def as_dict(self) -> dict[str, Any]:
        return {"features": {k: round(v, 4) for k, v in self.features.items()}, "probability": round(self.probability, 4),
                "missing": self.missing, "uncovered": self.uncovered}


@dataclass(frozen=True)
class RefusalModel:
    """Logistic models: over `FEATURES`, the probability that the passages answer the question; over
    `DOCUMENT_FEATURES`, the probability that one document's own passages speak to the point of an
    answer across documents.

    The two are fitted apart: a question's answer turns on one sentence that states what is asked,
    a document's place in a briefing on how much of the topic its passages cover. Without document
    weights the question's model serves both.
    """

    weights: dict[str, float]
    bias: float
    threshold: float
    document_threshold: float = 0.5  # for one document's own evidence, in an answer that spans documents
    document_weights: dict[str, float] = field(default_factory=dict)
    document_bias: float = 0.0
    calibration: dict[str, Any] = field(default_factory=dict)  # what it was fitted on, and how it did there

    def probability(self, features: Mapping[str, float]) -> float:
        return _logistic(self.weights, self.bias, features)

    def document_probability(self, features: Mapping[str, float]) -> float:
        if not self.document_weights:
            return self.probability(features)
        return _logistic(self.document_weights, self.document_bias, features)

    @classmethod
    def load(cls, path: Path | str = "") -> RefusalModel:
        """The model in `path`, or the bundled one for an empty path."""
        raw = json.loads(Path(path or BUNDLED_MODEL).read_text(encoding="utf-8"))
        return cls(raw["weights"], raw["bias"], raw["threshold"], raw.get("document_threshold", raw["threshold"]),
                   raw.get("document_weights", {}), raw.get("document_bias", 0.0), raw.get("calibration", {}))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")


def _logistic(weights: Mapping[str, float], bias: float, features: Mapping[str, float]) -> float:
    z = bias + sum(w * features.get(name, 0.0) for name, w in weights.items())
    return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))


def fit(rows: Sequence[Mapping[str, float]], labels: Sequence[bool], l2: float = 1.0,
        features: Sequence[str] = FEATURES) -> tuple[dict[str, float], float]:
    """Weights and bias of a logistic regression (Newton's method, an L2 penalty on the weights).

    A few features and a few hundred questions need no library; the penalty keeps a weight finite
    when one feature alone separates the questions of a small set.

    >>> weights, bias = fit([{"coverage": c} | {f: 0.0 for f in FEATURES if f != "coverage"} for c in (0.1, 0.2, 0.8, 0.9)],
    ...                     [False, False, True, True])
    >>> weights["coverage"] > 0 > bias
    True
    """
    x = np.array([[row[name] for name in features] + [1.0] for row in rows])
    y = np.array(labels, dtype=float)
    beta = np.zeros(x.shape[1])
    penalty = np.diag([l2] * len(features) + [0.0])
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-x @ beta))
        gradient = x.T @ (p - y) + penalty @ beta
        hessian = (x * (p * (1 - p))[:, None]).T @ x + penalty
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    return {name: round(float(w), 4) for name, w in zip(features, beta)}, round(float(beta[-1]), 4)


def passage_text(node: NodeWithScore) -> str:
    """A passage with the catalog fields a question may use to name it ("the UN Foundation summary").

    A hyphenated name in them is also given in its parts: "the UNU concept note" names the note
    issued by "UNU-CPR".
    """
    meta = node.node.metadata
    catalog = " ".join(str(meta.get(key, "")) for key in ("title", "kind", "issuer", "heading"))
    return f"{catalog} {catalog.replace('-', ' ')} {node.node.get_content()}"


def words(text: str) -> list[str]:
    """The distinct lower-cased words of a text, which `closeness` embeds one by one.

    >>> words("Fines, fines and Fines-based rules")
    ['and', 'fines', 'fines-based', 'rules']
    """
    return sorted(set(_WORD.findall(text.lower())))


def closeness(question: str, terms: set[str], text: str, embed_model: SentenceTransformerEmbedding) -> dict[str, float]:
    """For each of the question's `terms`, how close the text comes to saying it in other words.

    The cosine between the term's word, embedded alone, and the closest word of the text:
    "pictures" ~ "images" 0.81, "employees" ~ "workers" 0.85. Names are never reworded ("Asia" is
    not "Africa"): theirs is 0.
    """
    return closeness_in(question, terms, [text], embed_model)(text)


def closeness_in(question: str, terms: set[str], texts: Sequence[str],
                 embed_model: SentenceTransformerEmbedding) -> Callable[[str], dict[str, float]]:
    """`closeness` for any one of `texts`, their words embedded once for all of them (the rerank reads each sentence)."""
    rewordable = terms - name_terms(question)
    asked = {stem: word for word in _WORD.findall(question.lower()) for stem in keyword_tokens(word) if stem in rewordable}
    vocabulary = words(" ".join(texts))
    if not asked or not vocabulary:
        return lambda text: dict.fromkeys(terms, 0.0)
    vectors = embed_model.vectors(list(asked.values()) + vocabulary)
    table = np.maximum(vectors[: len(asked)] @ vectors[len(asked) :].T, 0.0)
    column = {word: i for i, word in enumerate(vocabulary)}

    def close(text: str) -> dict[str, float]:
        columns = [column[word] for word in words(text) if word in column]
        if not columns:
            return dict.fromkeys(terms, 0.0)
        return dict.fromkeys(terms, 0.0) | {stem: float(c) for stem, c in zip(asked, table[:, columns].max(axis=1))}

    return close


def missing_figures(question: str, nodes: Sequence[NodeWithScore]) -> list[str]:
    """The figures a question states that none of the passages (nor their sections) holds.

    >>> from llama_index.core.schema import TextNode
    >>> node = NodeWithScore(node=TextNode(text="Fines of up to EUR 35 000 000 apply.", metadata={}))
    >>> missing_figures("Do fines of EUR 35,000,000 apply in 2031 to one of the two?", [node])
    ['2031']
    """
    context = normalise(" ".join(f"{n.node.metadata.get('section', '')} {n.node.get_content()}" for n in nodes))
    present = set(NUMBER.findall(context))
    return [number for number in dict.fromkeys(stated_figures(question)) if number not in present]


def measure(
    question: str,
    nodes: Sequence[NodeWithScore],
    ranked: Sequence[Sentence],
    embed_model: SentenceTransformerEmbedding,
    vocabulary: Vocabulary,
    names: Sequence[str] = (),
) -> Evidence:
    """The evidence features of the passages `nodes` and their sentences `ranked` (best first).

    `names` are the document names the question used: the passages need not say them (see
    `retrieval.unnamed`), but the question is read as asked for the thing or act it asks about
    ("How does the EU AI Act *tax* companies?").

    - `similarity`, `best_similarity`: cosine of the question to its three best sentences (mean) and
      to the best one;
    - `coverage`: the share of the question's terms (`question_terms`, in one spelling; without the
      word naming the asked kind, "date" or "figure", which `kind_missing` reads) that the best
      passages, with their titles, issuers and headings, say word for word or in other words;
    - `rare_coverage`: the same share with each term weighed by its rarity in the index
      (`ChunkStore.rarity`), and a term the passages do not say counted at its `closeness`: a near
      miss shares the common words of its topic and lacks the rare one the question is about
      ("insurance"), a question in other words says its rare words in near synonyms;
    - `thing_unnamed`: 1 when the passages never name the thing a "What X ...?" question asks for
      (`questions.asked_thing`), word for word or in other words: a near miss shares its topic with
      the passages and lacks only that word ("What *insurance* must providers take out?");
    - `kind_missing`: 1 when the question asks for a date, a figure, a length of time, a venue or a
      name and none of the best sentences states one;
    - `unknown_names`: the share of the question's names that no indexed passage holds ("Asia").
    """
    asked, question = question, unnamed(question, names)
    if not ranked:
        return Evidence(dict.fromkeys(FEATURES, 0.0) | {"kind_missing": 1.0, "unknown_names": 1.0}, missing_figures(question, nodes))
    similarities = [c.similarity for c in ranked[:3]]
    kind = asked_kind(question)
    # "On what *date* ...?" asks for a date, which `kind_missing` looks for, not for the word.
    terms = question_terms(question) - (FORM_WORDS if kind else set())
    context = " ".join(passage_text(n) for n in nodes[:READ_PASSAGES])
    unsaid = terms - set(keyword_tokens(context))
    close = closeness(question, unsaid, context, embed_model)
    uncovered = {t for t in unsaid if close[t] < PARAPHRASE_SIMILARITY}
    # A hyphenated name is known when one of its parts is: "Ghanaian-hosted", "UNU-CPR's side event".
    spoken = [keyword_tokens(name.replace("-", " ")) for name in dict.fromkeys(NAME.findall(question))]
    spoken = [stems for stems in spoken if stems]
    rarity = {t: vocabulary.rarity(t) for t in terms}
    thing = asked_thing(asked)
    thing_terms = set(keyword_tokens(thing or ""))
    reworded = unsaid - uncovered
    thing_unsaid = bool(thing) and not names_thing(context, thing or "") and not (thing_terms and thing_terms <= reworded)
    features = {
        "similarity": float(np.mean(similarities)),
        "best_similarity": float(similarities[0]),
        "coverage": 1.0 - len(uncovered) / max(len(terms), 1),
        "rare_coverage": 1.0 - sum(rarity[t] * (1.0 - close[t]) for t in unsaid) / max(sum(rarity.values()), 1e-9),
        "thing_unnamed": float(thing_unsaid),
        "kind_missing": float(bool(kind) and not any(c.states_asked for c in ranked[:KIND_WINDOW])),
        "unknown_names": sum(not any(vocabulary.knows(t) for t in stems) for stems in spoken) / max(len(spoken), 1),
    }
    said = {stem: word for word in re.findall(r"[\w'-]+", question) for stem in keyword_tokens(word)}
    rarest = sorted(uncovered, key=lambda t: (t not in thing_terms, -rarity[t], t))
    return Evidence(features, missing_figures(question, nodes), [said.get(t, t) for t in rarest])
