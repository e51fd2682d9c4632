"""How big each multipart part is, so that 10,000 parts always hold the whole file.

S3 allows at most 10,000 parts of 5 MiB to 5 GiB (the last part may be smaller) and objects
up to 5 TiB. A fixed 8 MiB part stops at ~78 GiB, so the size is chosen per file:

- length known (``Content-Length``): ``max(min_part_size, ceil(length / 10,000))``, rounded
  up to a whole MiB; every part has that size.
- length unknown (chunked): start at ``min_part_size`` and double every 1,000 parts, so
  memory stays small for the usual file and 10,000 parts still reach
  ``1,023,000 x min_part_size`` (~7.8 TiB at 8 MiB, ~4.9 TiB at the 5 MiB floor).

Memory is a few parts (one filling, the uploads in flight), whatever the file's size; a
longer file costs bigger parts, not more of them in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

from printflow.download.errors import ArtifactTooLarge

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
TiB = 1024 * GiB

S3_MIN_PART_SIZE = 5 * MiB
S3_MAX_PART_SIZE = 5 * GiB
S3_MAX_PARTS = 10_000
S3_MAX_OBJECT_SIZE = 5 * TiB
GROWTH_INTERVAL = 1_000


@dataclass(frozen=True, slots=True)
class PartPlan:
    """The size of every part of one upload."""

    first_size: int
    grows: bool = False

    def size_of(self, part_number: int) -> int:
        """Size of part ``part_number`` (1-based); every part but the last is exactly this."""
        if part_number > S3_MAX_PARTS:
            raise ArtifactTooLarge(f"the file needs more than {S3_MAX_PARTS} parts")
        if not self.grows:
            return self.first_size
        doublings = (part_number - 1) // GROWTH_INTERVAL
        return min(self.first_size << doublings, S3_MAX_PART_SIZE)


def plan_parts(length: int | None, min_part_size: int, single_put_limit: int = 0) -> PartPlan:
    """The plan for a body of ``length`` bytes (None: unknown until the end).

    A body of known length up to ``single_put_limit`` gets one buffer larger than itself, so
    it never fills a part: it is stored with one ``PutObject`` (1 request instead of create,
    parts, complete and tag; S3 bills each).
    """
    if min_part_size < S3_MIN_PART_SIZE or min_part_size > S3_MAX_PART_SIZE:
        raise ValueError(f"min_part_size must be between {S3_MIN_PART_SIZE} and {S3_MAX_PART_SIZE}")
    if length is None:
        return PartPlan(first_size=min_part_size, grows=True)
    if length <= single_put_limit:
        return PartPlan(first_size=max(min_part_size, length + 1))
    if length > S3_MAX_OBJECT_SIZE:
        raise ArtifactTooLarge(f"the file is {length} bytes; S3 objects hold at most 5 TiB")
    needed = -(-length // S3_MAX_PARTS)
    needed = -(-needed // MiB) * MiB
    return PartPlan(first_size=min(max(min_part_size, needed), S3_MAX_PART_SIZE))
