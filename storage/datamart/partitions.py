"""Which ODS partition holds a corp: ``STATE/datamart/partitions.json``.

Theory of operation
-------------------
The datamart is partitioned by corp id (seed Figure 11(b)); each partition is one DuckDB
file, ``STATE/datamart/ods<k>.duckdb`` (k = 1, 2, ...).  The corp -> partition table is
a small JSON file that the arbitrator will own once it exists; until then the
generator (``starwrs datamart generate``) reads and writes it.  Its form::

    {"partitions": 2, "corps": {"90000003": 2, "90000004": 1}}

A corp in ``corps`` lives where it says.  Any other corp goes to its **default
partition**: ``int(corp_id) % partitions + 1`` for a numeric corp id (so consecutive
ids alternate, and the demo enterprise's corps are spread over both partitions),
``crc32(corp_id) % partitions + 1`` otherwise.  Whoever first writes a corp's rows
records the corp in the file, so a later change of ``partitions`` never moves data.
The file is replaced atomically (temporary file + ``os.replace``).
"""

from __future__ import annotations

import json
import os
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "DEFAULT_PARTITIONS",
    "PARTITIONS_FILE",
    "PartitionMap",
    "PartitionMapError",
    "default_partition",
    "partition_path",
    "read_partition_map",
    "write_partition_map",
]

#: The map's path under the state directory.
PARTITIONS_FILE = Path("datamart") / "partitions.json"
#: Partitions of a new deployment.
DEFAULT_PARTITIONS = 2


class PartitionMapError(Exception):
    """The partition map is unreadable or inconsistent (the message is one line)."""


def default_partition(corp_id: str, partitions: int) -> int:
    """The partition (1-based) of a corp that the map does not name."""
    if partitions < 1:
        raise PartitionMapError(f"partition count must be at least 1, not {partitions}")
    number = int(corp_id) if corp_id.isdigit() else zlib.crc32(corp_id.encode("utf-8"))
    return number % partitions + 1


def partition_path(state_dir: Path | str, partition: int) -> Path:
    """``STATE/datamart/ods<k>.duckdb``."""
    return Path(state_dir) / "datamart" / f"ods{partition}.duckdb"


@dataclass
class PartitionMap:
    """The corp -> partition table.

    Attributes:
        partitions: how many partitions there are (ODS1 .. ODS<partitions>).
        corps: corp id -> partition, for every corp whose rows were written.
    """

    partitions: int = DEFAULT_PARTITIONS
    corps: dict[str, int] = field(default_factory=dict)

    def partition_of(self, corp_id: str) -> int:
        """Where *corp_id*'s rows are (or will go)."""
        return self.corps.get(corp_id) or default_partition(corp_id, self.partitions)

    def assign(self, corp_id: str, partition: int) -> None:
        """Record that *corp_id* lives in *partition* (growing ``partitions`` if needed)."""
        if partition < 1:
            raise PartitionMapError(f"partition must be at least 1, not {partition}")
        self.corps[corp_id] = partition
        self.partitions = max(self.partitions, partition)


def read_partition_map(state_dir: Path | str) -> PartitionMap:
    """Read the map; a missing file is an empty map of :data:`DEFAULT_PARTITIONS`.

    Raises:
        PartitionMapError: the file exists but is not a valid map.
    """
    path = Path(state_dir) / PARTITIONS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return PartitionMap()
    except (OSError, ValueError) as exc:
        raise PartitionMapError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise PartitionMapError(f"{path}: not a JSON object")
    count = data.get("partitions", DEFAULT_PARTITIONS)
    corps = data.get("corps", {})
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise PartitionMapError(f"{path}: 'partitions' must be a positive integer")
    if not isinstance(corps, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= count
        for k, v in corps.items()
    ):
        raise PartitionMapError(f"{path}: 'corps' must map corp ids to partitions 1..{count}")
    return PartitionMap(count, dict(corps))


def write_partition_map(state_dir: Path | str, partition_map: PartitionMap) -> Path:
    """Write the map atomically; returns its path."""
    path = Path(state_dir) / PARTITIONS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "partitions": partition_map.partitions,
        "corps": dict(sorted(partition_map.corps.items())),
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
