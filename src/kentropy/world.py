"""A generated tiny world: people with facts, a corpus that states them, and questions about them.

Everything is a pure function of a seed, so the default pipeline is reproducible and offline. The world
is split in two *domains* that share nothing but the template grammar: the pretraining domain (people,
cities, countries) and a new domain (fictional compounds and the labs that made them) for continual
training. Fictional-knowledge records follow the kaist-ai/fictional-knowledge schema and talk about
people who never appear in the pretraining corpus, but whose facts compose with it (their birth city is a
pretraining city, so "the country of X's birth city" is a composition probe).
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
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


def build_world(seed: int, n_people: int, n_fictional: int, n_countries: int = 8, n_cities: int = 40) -> World:
    """Draw countries, cities, pretraining people and fictional people (disjoint names) from a seed."""
    rng = random.Random(seed)
    taken: set[str] = set()
    countries = _unique_words(rng, n_countries, 2, taken)
    cities = _unique_words(rng, n_cities, 3, taken)
    places = [Place(c, countries[i % n_countries]) for i, c in enumerate(cities)]

    def person() -> Person:
        # First names repeat across people (as in real corpora); full names are unique.
        name = f"{_word(rng, 2)} {_unique_words(rng, 1, 3, taken)[0]}"
        return Person(
            name=name,
            city=rng.choice(cities),
            year=rng.randrange(1700, 1990),
            profession=rng.choice(PROFESSIONS),
            color=rng.choice(COLORS),
            instrument=rng.choice(INSTRUMENTS),
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


def fact_sentence(person: Person, fact: str, variant: int) -> str:
    templates = _FACT_TEMPLATES[fact]
    return templates[variant % len(templates)].format(**asdict(person))


def biography(person: Person, rng: random.Random) -> str:
    facts = list(_FACT_TEMPLATES)
    rng.shuffle(facts)
    return " ".join(fact_sentence(person, f, rng.randrange(3)) for f in facts)


def pretraining_corpus(world: World, n_documents: int, seed: int) -> list[str]:
    """Documents of the pretraining domain: biographies of the pretraining people, plus geography."""
    rng = random.Random(seed)
    docs = []
    for _ in range(n_documents):
        if rng.random() < 0.15:
            places = rng.sample(world.places, 3)
            docs.append(" ".join(rng.choice(_PLACE_TEMPLATES).format(**asdict(p)) for p in places))
        else:
            docs.append(biography(rng.choice(world.people), rng))
    return docs


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


def write_world(
    files: dict[str, str | Path],
    seed: int,
    n_people: int,
    n_documents: int,
    n_entropy_documents: int,
    n_new_domain_documents: int,
    n_paraphrase: int,
    n_once: int,
    n_questions: int,
) -> None:
    """Write every generated artifact of the world, each to ``files[role]`` (roles: kentropy.layout.WORLD_FILES;
    Parquet for corpora, JSON otherwise), each atomically."""
    import pandas as pd

    from .io import atomic_file
    from .layout import WORLD_FILES

    if set(files) != set(WORLD_FILES):
        raise ValueError(f"write_world: files for {sorted(files)}, the world has {sorted(WORLD_FILES)}")
    world = build_world(seed, n_people, n_paraphrase + n_once)
    corpora = {
        "pretrain": pretraining_corpus(world, n_documents, seed + 1),
        # Held out from pretraining by seed: the entropy corpus is the same distribution, other draws.
        "entropy": pretraining_corpus(world, n_entropy_documents, seed + 2),
        "new_domain": new_domain_corpus(n_new_domain_documents, seed + 3),
    }
    for role, docs in corpora.items():
        with atomic_file(files[role]) as tmp:
            pd.DataFrame({"text": docs}).to_parquet(tmp, index=False)
    country = world.country_of
    records = [fictional_record(p, country[p.city], seed + 10 + i) for i, p in enumerate(world.fictional)]
    splits = {"paraphrase": records[:n_paraphrase], "once": records[n_paraphrase:]}
    for split, recs in splits.items():
        with atomic_file(files[split]) as tmp:
            tmp.write_text(json.dumps(recs, indent=1))
    questions = multiple_choice_questions(world, n_questions, seed + 4)
    with atomic_file(files["questions"]) as tmp:
        tmp.write_text("".join(json.dumps(q) + "\n" for q in questions))
