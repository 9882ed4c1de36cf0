"""A ledger made before protocols existed (``extracts`` without ``kind``) is refused
at start with the column named, and left as it was (docs/decisions.md, Data)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Column, MetaData, Table, UniqueConstraint, create_engine, inspect

from justering.errors import ConfigError
from justering.ledger.database import Ledger
from justering.ledger.schema import Base


def test_a_ledger_from_before_protocols_is_refused_naming_the_column(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = MetaData()
    for table in Base.metadata.sorted_tables:
        if table.name == "extracts":
            columns = [
                Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
                for c in table.columns
                if c.name != "kind"
            ]
            Table(table.name, old, *columns, UniqueConstraint("meeting_id", "paragraph"))
        else:
            table.to_metadata(old)
    engine = create_engine(url)
    old.create_all(engine)
    before = {c["name"] for c in inspect(engine).get_columns("extracts")}
    engine.dispose()
    with pytest.raises(ConfigError, match=r"extracts\.kind") as refused:
        Ledger(url, trail_key=b"k" * 32)
    assert "upgrade the ledger by hand" in refused.value.diagnostics()
    engine = create_engine(url)
    assert {c["name"] for c in inspect(engine).get_columns("extracts")} == before
    engine.dispose()
