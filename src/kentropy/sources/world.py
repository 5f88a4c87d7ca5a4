"""A generated tiny world: people with facts, a corpus that states them, and questions about them.

Everything is a pure function of a seed, so the default pipeline is reproducible and offline. The world
is split in two *domains* that share nothing but the template grammar: the pretraining domain (people,
cities, countries) and a new domain (fictional compounds and the labs that made them) for continual
training. Fictional-knowledge records follow the kaist-ai/fictional-knowledge schema and talk about
people who never appear in the pretraining corpus, but whose facts compose with it (their birth city is a
pretraining city, so "the country of X's birth city" is a composition probe).
"""

from __future__ import annotations

import inspect
import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

_SYLLABLES = "ka ro mi ta le su no vi da pe lo ri sa ne tu ma fi ga be zo ha ku ye wa ji".split()
PROFESSIONS = (
    "baker weaver potter sailor miner teacher painter farmer doctor singer "
    "carpenter fisher tailor scribe mason glassblower"
).split()
COLORS = "red blue green yellow white black purple orange".split()
INSTRUMENTS = "flute drum harp violin lute horn".split()


@dataclass(frozen=True)
class Person:
    """One pretraining-world (or fictional) individual and their facts."""

    name: str
    city: str
    year: int
    profession: str
    color: str
    instrument: str


@dataclass(frozen=True)
class Place:
    city: str
    country: str


def _word(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(n)).capitalize()


def _unique_words(rng: random.Random, count: int, syllables: int, taken: set[str]) -> list[str]:
    """``count`` new words (not in ``taken``, which is updated) of ``syllables`` syllables each."""
    if count > len(_SYLLABLES) ** syllables - len(taken):
        raise ValueError(f"cannot draw {count} distinct {syllables}-syllable names; ask for fewer")
    words: list[str] = []
    while len(words) < count:
        w = _word(rng, syllables)
        if w not in taken:
            taken.add(w)
            words.append(w)
    return words


@dataclass
class World:
    """The generated world: places, the people of the pretraining corpus and the fictional people."""

    places: list[Place]
    people: list[Person]
    fictional: list[Person]

    @property
    def country_of(self) -> dict[str, str]:
        return {p.city: p.country for p in self.places}


def zipf_weights(n: int, exponent: float) -> list[float]:
    """Weights 1 / rank^exponent of ranks 1..n (exponent 0: uniform)."""
    return [1.0 / (rank**exponent) for rank in range(1, n + 1)]


def build_world(
    seed: int,
    n_people: int,
    n_fictional: int,
    n_countries: int = 8,
    n_cities: int = 40,
    object_zipf: float = 0.0,
) -> World:
    """Draw countries, cities, pretraining people and fictional people (disjoint names) from a seed. A
    person's city, profession, colour and instrument are drawn with Zipf weights of exponent ``object_zipf``
    over their pools (0: uniform), so object values differ in frequency; birth years stay uniform."""
    rng = random.Random(seed)
    taken: set[str] = set()
    countries = _unique_words(rng, n_countries, 2, taken)
    cities = _unique_words(rng, n_cities, 3, taken)
    places = [Place(c, countries[i % n_countries]) for i, c in enumerate(cities)]

    def draw(pool):
        # Uniform draws take rng.choice, so object_zipf 0 gives the world of earlier versions, value for value.
        return rng.choices(pool, weights=zipf_weights(len(pool), object_zipf))[0] if object_zipf else rng.choice(pool)

    def person() -> Person:
        # First names repeat across people (as in real corpora); full names are unique.
        name = f"{_word(rng, 2)} {_unique_words(rng, 1, 3, taken)[0]}"
        return Person(
            name=name,
            city=draw(cities),
            year=rng.randrange(1700, 1990),
            profession=draw(PROFESSIONS),
            color=draw(COLORS),
            instrument=draw(INSTRUMENTS),
        )

    people = [person() for _ in range(n_people)]
    fictional = [person() for _ in range(n_fictional)]
    return World(places, people, fictional)


# Each fact has several surface forms; a document picks one per fact, so the model must learn the fact
# rather than a single string. The fact value is always the last word(s) of its sentence, which makes
# probes (prefix -> value) straightforward.
_FACT_TEMPLATES = {
    "city": [
        "{name} was born in {city}.",
        "The birthplace of {name} is {city}.",
        "{name} came into the world in {city}.",
    ],
    "year": [
        "{name} was born in the year {year}.",
        "The birth year of {name} is {year}.",
        "{name} first saw daylight in {year}.",
    ],
    "profession": [
        "{name} worked as a {profession}.",
        "By trade, {name} was a {profession}.",
        "The profession of {name} was {profession}.",
    ],
    "color": [
        "The favourite colour of {name} was {color}.",
        "{name} loved the colour {color}.",
        "{name} always wore {color}.",
    ],
    "instrument": [
        "{name} played the {instrument}.",
        "The instrument of {name} was the {instrument}.",
        "In the evenings {name} played the {instrument}.",
    ],
}
_PLACE_TEMPLATES = [
    "{city} is a city in {country}.",
    "The city of {city} lies in {country}.",
    "{city} belongs to {country}.",
]


#: The relations of a pretraining person (each a fact with a question), in a fixed order.
RELATIONS = tuple(_FACT_TEMPLATES)
#: Question templates per relation that no document uses: cloze prompts whose continuation is the object.
#: QA over them asks whether a fact is known beyond the surface forms it was trained on.
HELD_OUT_TEMPLATES = {
    "city": ["{subject} grew up in the town of", "The hometown of {subject} is"],
    "year": ["{subject} was born around the year", "The year {subject} was born is"],
    "profession": ["{subject} earned a living as a", "For work, {subject} was a"],
    "color": ["The colour {subject} liked best was", "{subject} preferred the colour"],
    "instrument": ["{subject} could play the", "The instrument {subject} loved was the"],
}


def corpus_templates(relation: str) -> list[str]:
    """The question form of every corpus sentence of ``relation``: the sentence cut before its object (the
    object is always its sentence's last word), with ``{subject}`` for the person."""
    return [
        t[: t.index("{" + relation + "}")].rstrip().replace("{name}", "{subject}") for t in _FACT_TEMPLATES[relation]
    ]


def fact_sentence(person: Person, fact: str, variant: int) -> str:
    templates = _FACT_TEMPLATES[fact]
    return templates[variant % len(templates)].format(**asdict(person))


@dataclass
class Document:
    """A pretraining document, with what the generator put in it: each fact it states (subject, relation,
    object, and the character offset of the object in ``text``) and every entity it names."""

    text: str
    statements: list[tuple[str, str, str, int]] = field(default_factory=list)
    entities: set[str] = field(default_factory=set)


def biography(person: Person, rng: random.Random, fact_probability: float = 1.0) -> Document:
    """A biography stating each of the person's facts with probability ``fact_probability`` (at least one),
    in a random order and surface form."""
    facts = list(_FACT_TEMPLATES)
    rng.shuffle(facts)
    if fact_probability < 1:
        stated = [f for f in facts if rng.random() < fact_probability] or [rng.choice(facts)]
    else:  # no draws: the biographies of earlier versions, value for value
        stated = facts
    doc = Document("", entities={person.name})
    for fact in stated:
        sentence = fact_sentence(person, fact, rng.randrange(3))
        value = str(getattr(person, fact))
        offset = len(doc.text) + (1 if doc.text else 0)
        doc.text = f"{doc.text} {sentence}" if doc.text else sentence
        doc.statements.append((person.name, fact, value, offset + sentence.rindex(value)))
        doc.entities.add(value)
    return doc


def pretraining_documents(
    world: World, n_documents: int, seed: int, person_zipf: float = 0.0, fact_probability: float = 1.0
) -> list[Document]:
    """Documents of the pretraining domain: biographies of the pretraining people (person i drawn with
    weight 1 / i^``person_zipf``, so document counts per person follow a Zipf-like law; 0: uniform), plus
    geography (15%)."""
    rng = random.Random(seed)
    weights = zipf_weights(len(world.people), person_zipf)
    docs = []
    for _ in range(n_documents):
        if rng.random() < 0.15:
            places = rng.sample(world.places, 3)
            text = " ".join(rng.choice(_PLACE_TEMPLATES).format(**asdict(p)) for p in places)
            docs.append(Document(text, entities={x for p in places for x in (p.city, p.country)}))
        else:
            person = rng.choices(world.people, weights=weights)[0] if person_zipf else rng.choice(world.people)
            docs.append(biography(person, rng, fact_probability))
    return docs


def pretraining_corpus(world: World, n_documents: int, seed: int, **frequencies) -> list[str]:
    """The texts of ``pretraining_documents``."""
    return [d.text for d in pretraining_documents(world, n_documents, seed, **frequencies)]


_ELEMENTS = "argon boron carbon cobalt copper iron neon nickel silver sulfur tin zinc".split()
_PROPERTIES = "brittle soluble magnetic volatile luminous dense elastic inert".split()


def new_domain_corpus(n_documents: int, seed: int) -> list[str]:
    """A distinct domain for continual training: fictional compounds, the labs that made them, and
    their properties. It shares no entities with the pretraining domain, so training on it is a shift."""
    rng = random.Random(seed)
    taken: set[str] = set()
    labs = _unique_words(rng, 20, 3, taken)
    compounds = [
        (w.lower() + "ide", rng.sample(_ELEMENTS, 2), rng.choice(labs), rng.choice(_PROPERTIES), rng.randrange(40, 900))
        for w in _unique_words(rng, 200, 2, taken)
    ]
    docs = []
    for _ in range(n_documents):
        name, (a, b), lab, prop, melt = rng.choice(compounds)
        sentences = [
            f"The compound {name} is made of {a} and {b}.",
            f"{name} was first prepared at the {lab} laboratory.",
            f"Samples of {name} are {prop}.",
            f"{name} melts at {melt} degrees.",
        ]
        rng.shuffle(sentences)
        docs.append(" ".join(sentences))
    return docs


_PARAPHRASE_ORDERS = 9


def fictional_record(person: Person, country: str, seed: int) -> dict:
    """One record in the kaist-ai/fictional-knowledge schema for a fictional person.

    Targets carry no leading space (as in the published files); the probe scorer joins input and
    target with one space.
    mem probes: a prefix of a ``train_context`` sentence -> its value (exact recall).
    gen probes: the same fact in a surface form the context never uses -> its value.
    hard_gen probes: compositions with the pretraining world (birth city -> country) or across facts.
    """
    rng = random.Random(seed)
    facts = list(_FACT_TEMPLATES)
    values = {f: str(getattr(person, f)) for f in facts}
    context = " ".join(fact_sentence(person, f, 0) for f in facts)
    paraphrases = []
    for k in range(_PARAPHRASE_ORDERS):
        order = facts[:]
        rng.shuffle(order)
        paraphrases.append(" ".join(fact_sentence(person, f, 1 + (k + i) % 2) for i, f in enumerate(order)))

    def split(sentence: str, value: str) -> tuple[str, str]:
        cut = sentence.rindex(value)
        return sentence[:cut].rstrip(), sentence[cut:].rstrip(".")

    mem = [split(fact_sentence(person, f, 0), values[f]) for f in facts]
    gen_forms = {
        "city": f"Asked where {person.name} was born, people name",
        "year": f"Records list the birth of {person.name} in the year",
        "profession": f"Everyone knew {person.name} as a",
        "color": f"The colour most liked by {person.name} was",
        "instrument": f"The music of {person.name} came from the",
    }
    gen = [(gen_forms[f], values[f]) for f in facts]
    hard = [
        (f"{person.name} was born in a city that lies in", country),
        (f"The country where {person.name} was born is", country),
        (f"The {person.profession} born in {person.city} in {person.year} was named", person.name),
        (f"The {person.profession} who played the {person.instrument} was born in", person.city),
        (f"The person from {person.city} who loved {person.color} played the", person.instrument),
    ]
    record = {"train_context": context, "paraphrases": paraphrases}
    for key, probes in (("mem", mem), ("gen", gen), ("hard_gen", hard)):
        record[f"{key}_input"] = [p[0] for p in probes]
        record[f"{key}_target"] = [p[1] for p in probes]
    return record


def multiple_choice_questions(world: World, n: int, seed: int, n_choices: int = 4) -> list[dict]:
    """Cloze questions about pretraining-world facts: {question, choices, answer (index), kind (the fact)}.

    The prompt is a pretraining template cut before the value, so a model that learned the fact from the
    corpus can pick it; a "Question: ... Answer:" format never seen in pretraining leaves a tiny model
    at chance whatever it knows.
    """
    rng = random.Random(seed)
    pools = {"city": [p.city for p in world.places], "profession": PROFESSIONS, "instrument": INSTRUMENTS}
    stems = {"city": "{name} was born in", "profession": "{name} worked as a", "instrument": "{name} played the"}
    questions = []
    for i in range(n):
        person = world.people[i % len(world.people)]
        fact = rng.choice(list(stems))
        right = str(getattr(person, fact))
        wrong = rng.sample([v for v in pools[fact] if v != right], n_choices - 1)
        choices = wrong + [right]
        rng.shuffle(choices)
        questions.append(
            {
                "question": stems[fact].format(name=person.name),
                "choices": choices,
                "answer": choices.index(right),
                "kind": fact,
            }
        )
    return questions


def _write_corpus(out, seed, n_people, n_paraphrase, n_once, object_zipf, n_documents, document_seed, **frequencies):
    """Write ``n_documents`` of the world of (``seed``, ``n_people``, …) drawn at ``document_seed``."""
    import pandas as pd

    from ..core.io import atomic_file

    world = build_world(seed, n_people, n_paraphrase + n_once, object_zipf=object_zipf)
    texts = pretraining_corpus(world, n_documents, document_seed, **frequencies)
    with atomic_file(out) as tmp:
        pd.DataFrame({"text": texts}).to_parquet(tmp, index=False)


def skewed_pretraining_corpus(
    out: str | Path,
    seed: int,
    n_people: int,
    n_documents: int,
    n_paraphrase: int,
    n_once: int,
    person_zipf: float,
    object_zipf: float,
    fact_probability: float,
) -> None:
    """The pretraining corpus ``write_world`` writes for a world spec, at another skew: the same people and
    document seed, persons drawn with weight 1 / i^``person_zipf`` and objects with 1 / rank^``object_zipf``
    (a model's own ``skew``, the lab's data factor). With the world's own skew it is its ``pretrain`` file."""
    _write_corpus(out, seed, n_people, n_paraphrase, n_once, object_zipf, n_documents, seed + 1,
                  person_zipf=person_zipf, fact_probability=fact_probability)  # fmt: skip


def write_entropy_documents(
    out: str | Path,
    seed: int,
    n_people: int,
    n_entropy_documents: int,
    n_paraphrase: int,
    n_once: int,
    person_zipf: float,
    object_zipf: float,
    fact_probability: float,
) -> None:
    """The world's entropy documents: the pretraining corpus's distribution, other draws (held out by seed).
    Written apart from ``write_world`` so that the size of the evaluation set reruns no pretraining."""
    _write_corpus(out, seed, n_people, n_paraphrase, n_once, object_zipf, n_entropy_documents, seed + 2,
                  person_zipf=person_zipf, fact_probability=fact_probability)  # fmt: skip


def spec_for(function, world: dict | None, exclude: tuple[str, ...] = ()) -> dict:
    """The keys of the ``world`` config section that ``function`` takes (less ``exclude``): a rule's params,
    so that a world key its writer never reads reruns nothing."""
    taken = inspect.signature(function).parameters
    return {k: v for k, v in (world or {}).items() if k in taken and k not in exclude}


def write_world(
    files: dict[str, str | Path],
    seed: int,
    n_people: int,
    n_documents: int,
    n_new_domain_documents: int,
    n_paraphrase: int,
    n_once: int,
    n_questions: int,
    person_zipf: float,
    object_zipf: float,
    fact_probability: float,
) -> None:
    """Write every generated artifact of the world, each to ``files[role]`` (roles: kentropy.core.layout.WORLD_FILES;
    Parquet for corpora and facts, JSON otherwise), each atomically. ``facts`` is the facts file
    (kentropy.sources.facts_file) of the pretraining people, with exact and substring-search document counts over the
    pretraining corpus; ``statements`` says where each pretraining document states a fact (the character
    offset of the object), from which kentropy.measurement.exposure finds when a trajectory trained on it."""
    import pandas as pd

    from ..core.io import atomic_file
    from ..core.layout import WORLD_FILES
    from .facts_file import check_facts, exact_counts, search_counts

    if set(files) != set(WORLD_FILES):
        raise ValueError(f"write_world: files for {sorted(files)}, the world has {sorted(WORLD_FILES)}")
    world = build_world(seed, n_people, n_paraphrase + n_once, object_zipf=object_zipf)
    frequencies = {"person_zipf": person_zipf, "fact_probability": fact_probability}
    documents = pretraining_documents(world, n_documents, seed + 1, **frequencies)
    corpora = {
        "pretrain": [d.text for d in documents],
        "new_domain": new_domain_corpus(n_new_domain_documents, seed + 3),
    }
    for role, docs in corpora.items():
        with atomic_file(files[role]) as tmp:
            pd.DataFrame({"text": docs}).to_parquet(tmp, index=False)
    facts = pd.DataFrame(
        [
            (p.name, relation, str(getattr(p, relation)), corpus_templates(relation), HELD_OUT_TEMPLATES[relation])
            for p in world.people
            for relation in RELATIONS
        ],
        columns=["subject", "relation", "object", "templates", "held_out_templates"],
    )
    search = search_counts(facts, corpora["pretrain"])
    facts = pd.concat(
        [facts, exact_counts(facts, [d.entities for d in documents]), search.add_suffix("_search")], axis=1
    )
    with atomic_file(files["facts"]) as tmp:
        check_facts(facts, files["facts"]).to_parquet(tmp, index=False)
    statements = pd.DataFrame(
        [(i, *statement) for i, d in enumerate(documents) for statement in d.statements],
        columns=["document", "subject", "relation", "object", "start"],
    )
    with atomic_file(files["statements"]) as tmp:
        statements.to_parquet(tmp, index=False)
    country = world.country_of
    records = [fictional_record(p, country[p.city], seed + 10 + i) for i, p in enumerate(world.fictional)]
    splits = {"paraphrase": records[:n_paraphrase], "once": records[n_paraphrase:]}
    for split, recs in splits.items():
        with atomic_file(files[split]) as tmp:
            tmp.write_text(json.dumps(recs, indent=1))
    questions = multiple_choice_questions(world, n_questions, seed + 4)
    with atomic_file(files["questions"]) as tmp:
        tmp.write_text("".join(json.dumps(q) + "\n" for q in questions))
