"""The facts file: (subject, relation, object) triples with question templates and, optionally, how often the
pretraining corpus mentions each — the input of closed-book QA (kentropy.measurement.qa), SMI (kentropy.analysis.smi)
and parameter specialization (kentropy.measurement.specialization), for the generated world or any model.

Schema (Parquet, or JSON lines; config/README.md, "Facts file"), a row per fact:
- ``subject``, ``relation``, ``object``: strings; the object is the answer;
- ``templates``: list of cloze prompts with ``{subject}``, whose continuation is the object (the surface forms
  of the pretraining corpus, for the generated world);
- ``held_out_templates`` (optional): prompts of the same kind that the corpus never uses;
- counts (optional; SMI needs them): ``N`` documents in the corpus, and the documents that name the subject
  (``n_s``), the object (``n_o``) and both (``n_so``). The generated world writes them exactly, from the
  generator, and beside them ``*_search`` counts found by substring search over its corpus, as SMI's released
  code counts a real corpus. For a real corpus the counts come from an index outside this project.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.config import ConfigError
from ..core.errors import KentropyError
from ..core.layout import PatternError, fill_pattern

REQUIRED = ("subject", "relation", "object", "templates")
#: Document counts of a fact: the corpus size and the documents naming its subject, object, both.
COUNTS = ("N", "n_s", "n_o", "n_so")
#: Where a fact's counts come from: the generator (exact) or substring search over the corpus (``*_search``).
COUNT_SOURCES = {"exact": "", "search": "_search"}
#: The template kind the documents themselves use (QA, SMI and PSS report it).
CORPUS_TEMPLATES = "corpus"
#: The two template kinds a question is asked with, and the facts-file column of each.
TEMPLATE_KINDS = {CORPUS_TEMPLATES: "templates", "held_out": "held_out_templates"}


class FactsError(KentropyError, ValueError):
    """A facts file that does not follow the schema: names the file and the column."""


def counts_of(facts: pd.DataFrame, source: str) -> pd.DataFrame | None:
    """The ``COUNTS`` columns of ``source`` (``exact`` or ``search``) under their plain names; None when the
    file has none."""
    columns = [c + COUNT_SOURCES[source] for c in COUNTS]
    if not set(columns) <= set(facts.columns):
        return None
    return facts[columns].set_axis(list(COUNTS), axis=1)


def load_facts(path: str | Path) -> pd.DataFrame:
    """A facts file (``.parquet``, ``.jsonl`` or ``.json`` records), checked against the schema."""
    path = Path(path)
    if path.suffix == ".parquet":
        facts = pd.read_parquet(path)
    elif path.suffix in (".jsonl", ".json"):
        facts = pd.read_json(path, lines=path.suffix == ".jsonl")
    else:
        raise FactsError(f"{path}: a facts file is .parquet, .jsonl or .json")
    return check_facts(facts, str(path))


def check_facts(facts: pd.DataFrame, name: str = "facts") -> pd.DataFrame:
    """``facts`` with list columns as lists of str; FactsError naming the column that breaks the schema."""
    missing = [c for c in REQUIRED if c not in facts.columns]
    if missing:
        raise FactsError(f"{name}: no column {', '.join(missing)} (a facts file has {', '.join(REQUIRED)})")
    if facts.empty:
        raise FactsError(f"{name}: no facts")
    facts = facts.reset_index(drop=True).copy()
    for column in ("subject", "relation", "object"):
        if not all(isinstance(v, str) and v.strip() for v in facts[column]):
            raise FactsError(f"{name}: column {column} must hold non-empty strings")
    for column in TEMPLATE_KINDS.values():
        if column not in facts:
            continue
        facts[column] = [list(map(str, v)) if isinstance(v, (list, tuple, np.ndarray)) else [] for v in facts[column]]
        bad = [t for ts in facts[column] for t in ts if "{subject}" not in t]
        if bad:
            raise FactsError(f"{name}: column {column}: template {bad[0]!r} has no {{subject}}")
        for template in (t for ts in facts[column] for t in ts):
            try:
                fill_pattern(template, subject="")
            except PatternError as err:
                raise FactsError(f"{name}: column {column}: {err}") from None
    if not all(len(ts) for ts in facts.templates):
        raise FactsError(f"{name}: column templates: every fact needs at least one template")
    for source, suffix in COUNT_SOURCES.items():
        present = [c + suffix for c in COUNTS if c + suffix in facts]
        if present and len(present) < len(COUNTS):
            raise FactsError(f"{name}: {source} counts need all of {', '.join(c + suffix for c in COUNTS)}")
        if present and (facts[present].to_numpy() < 0).any():
            raise FactsError(f"{name}: negative {source} counts")
    if facts.duplicated(["subject", "relation"]).any():
        row = facts[facts.duplicated(["subject", "relation"])].iloc[0]
        raise FactsError(f"{name}: two facts for ({row.subject!r}, {row.relation!r})")
    return facts


def exact_counts(facts: pd.DataFrame, entities: list[set[str]]) -> pd.DataFrame:
    """``COUNTS`` of every fact from the entities each document names (the generator knows them)."""
    where = defaultdict(set)
    for i, names in enumerate(entities):
        for name in names:
            where[name].add(i)
    return _counts(facts, where, len(entities))


def search_counts(facts: pd.DataFrame, texts: list[str]) -> pd.DataFrame:
    """``COUNTS`` found by substring search, as SMI's released code counts: a document names a string when it
    contains it with a space before it (yuhui1038/SMI ``search/tools/search_ours_101.py`` lines 46-53), so a
    name that opens a document is missed and a name inside a longer word is found."""
    strings = set(facts.subject) | set(facts.object)
    where = {s: {i for i, text in enumerate(texts) if " " + s in text} for s in strings}
    return _counts(facts, where, len(texts))


def _counts(facts: pd.DataFrame, where: dict, n_documents: int) -> pd.DataFrame:
    rows = [
        (n_documents, len(where[s]), len(where[o]), len(where[s] & where[o]))
        for s, o in zip(facts.subject, facts.object)
    ]
    return pd.DataFrame(np.asarray(rows, dtype=np.int64).reshape(-1, 4), columns=list(COUNTS), index=facts.index)


def questions(facts: pd.DataFrame) -> pd.DataFrame:
    """A row per (fact, template): ``fact`` (the row of ``facts``), subject, relation, object, ``templates``
    (the template kind: ``corpus`` or ``held_out``), ``template`` (its index within the kind) and ``prompt``."""
    rows = []
    for fact, row in enumerate(facts.itertuples(index=False)):
        for kind, column in TEMPLATE_KINDS.items():
            for i, template in enumerate(getattr(row, column, None) or []):
                rows.append(
                    (fact, row.subject, row.relation, row.object, kind, i, fill_pattern(template, subject=row.subject))
                )
    columns = ["fact", "subject", "relation", "object", "templates", "template", "prompt"]
    return pd.DataFrame(rows, columns=columns)


def check_facts_section(config: dict) -> None:
    """A generated facts file needs the world; a facts file of your own must exist and follow the schema
    (``load_facts``), checked at DAG build (kentropy.pipeline.config_check) so a bad column stops the DAG build,
    not a job."""
    facts = config.get("facts")
    if not facts:
        return
    if facts["source"] == "generated" and "world" not in config:
        raise ConfigError("config: facts.source: generated needs the `world` section")
    if facts["source"] == "file":
        if not Path(facts["path"]).is_file():
            raise ConfigError(f"config: facts.path: no file {facts['path']}")
        try:
            load_facts(facts["path"])
        except FactsError as err:
            raise ConfigError(f"config: facts.path: {err}") from None
