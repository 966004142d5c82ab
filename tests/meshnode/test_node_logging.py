"""Structured logs: JSON lines carry the structured fields; text lines append them."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from pathlib import Path

import pytest

from meshnode.config import LogSection, NodeConfig
from meshnode.node import configure_logging, wall_epoch


@pytest.fixture
def restore_root() -> object:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_structured_fields_are_logged(
    tmp_path: Path, restore_root: logging.Logger, fmt: str
) -> None:
    config = dataclasses.replace(NodeConfig.for_data_dir(tmp_path), log=LogSection("INFO", fmt))
    configure_logging(config)
    out = io.StringIO()
    restore_root.handlers[0].setStream(out)  # type: ignore[attr-defined]
    logging.getLogger("meshnode.test").info("peer connected", extra={"peer": "12D3Koo"})
    logging.getLogger("meshnode.test").debug("hidden")
    line = out.getvalue().strip()
    assert "hidden" not in line
    if fmt == "json":
        record = json.loads(line)
        assert (record["msg"], record["peer"], record["level"]) == (
            "peer connected",
            "12D3Koo",
            "INFO",
        )
    else:
        assert line.endswith('peer connected  {"peer": "12D3Koo"}')


def test_wall_epoch_is_ten_second_floor() -> None:
    assert wall_epoch(0.0) == 0
    assert wall_epoch(19.999) == 1
    assert wall_epoch(1_700_000_005.0) == 170_000_000
