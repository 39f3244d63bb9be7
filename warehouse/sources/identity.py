"""Which file holds which cursor: files matched to known identities by their first bytes.

Files sharing an identity are generations of one file (a `.gz` or `.1` copy beside the live
file), of which one is read, or files that only start alike (a new live file whose first line
repeats its rotated `.1`), of which the one not holding the committed bytes gets an identity of
its own, with a fingerprint long enough to tell the two apart.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from warehouse.errors import SourceError, SourceGone
from warehouse.sources.discovery import SourceFile
from warehouse.sources.jsonl import (
    COLLISION_BYTES,
    FINGERPRINT_BYTES,
    TAIL_BYTES,
    ReadPlan,
    fingerprint,
    read_prefix,
    stream_name,
)
from warehouse.store.catalog import SourceState


def match_state(display: str, prefix: bytes, states: list[SourceState]) -> SourceState | None:
    """The identity whose fingerprint the file's first bytes carry (the longest one first)."""
    by_fp = {(s.fp_len, s.fingerprint): s for s in states}
    for fp_len in sorted({s.fp_len for s in states}, reverse=True):
        if fp_len <= len(prefix):
            key = (fp_len, fingerprint(display, prefix[:fp_len]))
            if key in by_fp:
                return by_fp[key]
    return None


def prefix_bytes(states: list[SourceState]) -> int:
    """How many first bytes identify a file among `states` (more after a collision)."""
    return max([FINGERPRINT_BYTES, *(s.fp_len for s in states)])


@dataclass(eq=False)
class _Candidate:
    """A file in the running for an identity; `prefix` None: unchanged since last read."""

    file: SourceFile
    order: int
    prefix: bytes | None
    plan: ReadPlan | None = None

    @property
    def rank(self) -> tuple[bool, bool, int]:
        """Which of several files holding one identity is read: live, plain, then longest."""
        return (self.file.final, self.file.compressed, -self.file.size)


def plan_reads(
    files: list[SourceFile], states: list[SourceState]
) -> tuple[list[ReadPlan], list[SourceError]]:
    """Match files to known identities and decide where to start reading each one.

    A file gone since discovery is left out with a SourceGone among the errors.
    """
    size = prefix_bytes(states)
    latest_by_path = {s.path: s for s in states}  # ordered by id: the newest identity wins
    by_state: dict[int, list[_Candidate]] = {}
    states_by_id = {s.id: s for s in states}
    unknown: list[tuple[_Candidate, bool]] = []
    errors: list[SourceError] = []
    for order, file in enumerate(files):
        if file.size == 0:
            continue
        state_by_path = latest_by_path.get(file.display)
        if (
            state_by_path is not None
            and state_by_path.stat_size == file.size
            and state_by_path.stat_mtime_ns == file.mtime_ns
        ):
            # Unchanged since it was last read: it still holds its identity, unopened.
            by_state.setdefault(state_by_path.id, []).append(_Candidate(file, order, None))
            continue
        try:
            prefix = read_prefix(file, size)
        except SourceError as exc:
            errors.append(exc)
            continue
        state = match_state(file.display, prefix, states)
        candidate = _Candidate(file, order, prefix)
        if state is None:
            unknown.append((candidate, state_by_path is not None))
        else:
            by_state.setdefault(state.id, []).append(candidate)
    chosen: list[_Candidate] = []
    for state_id, group in by_state.items():
        chosen += _resolve(group, states_by_id[state_id], errors)
    live = {
        stream_name(c.file.display): c for g in by_state.values() for c in g if not c.file.final
    }
    for group in _new_groups(unknown):
        holder = min(group, key=lambda c: c.rank)
        known_live = live.get(stream_name(holder.file.display))
        if known_live is not None and _older_copy(holder, known_live, errors):
            continue
        chosen += _resolve(group, None, errors)
    chosen.sort(key=lambda c: c.order)
    return [c.plan for c in chosen if c.plan is not None], errors


def _new_groups(unknown: list[tuple[_Candidate, bool]]) -> list[list[_Candidate]]:
    """Files seen for the first time, grouped when one starts like the other (a copy)."""
    groups: list[list[_Candidate]] = []
    for candidate, known_path in unknown:
        assert candidate.prefix is not None
        candidate.plan = ReadPlan(candidate.file, candidate.prefix, None, start=0, rewritten=False)
        # Known path, unknown first bytes: rewritten in place (e.g. truncated inside its first
        # block). Its lines may already be committed, so they are checked.
        candidate.plan.rewritten = known_path
        name = stream_name(candidate.file.display)
        for group in groups:
            first = group[0].prefix
            assert first is not None
            if stream_name(group[0].file.display) == name and (
                first.startswith(candidate.prefix) or candidate.prefix.startswith(first)
            ):
                group.append(candidate)
                break
        else:
            groups.append([candidate])
    return groups


def _resolve(
    group: list[_Candidate], state: SourceState | None, errors: list[SourceError]
) -> list[_Candidate]:
    """The files of one identity to read: its holder, and any file that only starts like it.

    The holder is a file that still holds the committed bytes (a plain file's tail at the
    cursor matches; an unchanged or compressed one is taken on trust and a compressed one is
    checked while skipping to the cursor), preferring the live file: a `.gz` or `.1` copy
    beside it is never read, so the shared cursor never moves into a partial last line that
    the live file may still complete. A copy is read once it holds the identity alone.
    """
    if state is not None:
        readable = []
        for candidate in group:
            try:
                if candidate.prefix is not None:
                    candidate.plan = _plan_for(candidate.file, candidate.prefix, state)
                readable.append(candidate)
            except SourceError as exc:
                errors.append(exc)
        group = readable
        if not group:
            return []
    consistent = [
        c
        for c in group
        if state is None or c.plan is None or c.file.compressed or not c.plan.rewritten
    ]
    holder = min(consistent or group, key=lambda c: c.rank)
    chosen = [holder]
    for other in group:
        if other is holder or (state is not None and other in consistent):
            continue  # a copy of the holder's bytes
        try:
            distinct = _distinct_plan(other, holder)
        except SourceError as exc:
            errors.append(exc)
            continue
        if distinct is not None:
            other.plan = distinct
            chosen.append(other)
    return chosen


def _older_copy(copy: _Candidate, live: _Candidate, errors: list[SourceError]) -> bool:
    """Whether a rotated file too short to carry a fingerprint holds only the live file's start.

    A `.gz` taken before the live file's first line was complete matches no identity; read
    alone, its cut-off line would be quarantined while the live file completes it.
    """
    try:
        held = read_prefix(copy.file, COLLISION_BYTES + 1)
        return len(held) <= COLLISION_BYTES and read_prefix(live.file, len(held)) == held
    except SourceError as exc:
        errors.append(exc)
        return True


def _distinct_plan(other: _Candidate, holder: _Candidate) -> ReadPlan | None:
    """A plan reading `other` as a new identity if its bytes part from the holder's, else None.

    Its fingerprint covers up to the end of the first line where the two part, so neither file
    matches the other's identity again. Until that line is complete (or if the two agree over
    COLLISION_BYTES, a copy) it is not read.
    """
    mine = read_prefix(other.file, COLLISION_BYTES)
    part = _first_difference(mine, read_prefix(holder.file, COLLISION_BYTES))
    if part is None:
        return None
    end = mine.find(b"\n", part)
    if end < 0:
        return None
    plan = ReadPlan(other.file, mine, None, start=0, rewritten=False)
    plan.min_fp_len = end + 1
    return plan


def _first_difference(one: bytes, other: bytes) -> int | None:
    """Index of the first byte where two byte strings differ, None if one starts the other."""
    step = 4096
    for begin in range(0, min(len(one), len(other)), step):
        a, b = one[begin : begin + step], other[begin : begin + step]
        if a != b:
            differ = (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y)
            index = next(differ, None)
            return None if index is None else begin + index  # else: one ends inside the other
    return None


def _plan_for(file: SourceFile, prefix: bytes, state: SourceState) -> ReadPlan:
    if file.compressed:
        plan = ReadPlan(file, prefix, state, start=state.cursor, rewritten=False)
    else:
        rewritten = file.size < state.cursor
        if not rewritten and state.cursor > 0:
            rewritten = _tail_hash(file, state.cursor) != state.tail_hash
        start = 0 if rewritten else state.cursor
        plan = ReadPlan(file, prefix, state, start=start, rewritten=rewritten)
    # An identity made distinct by a longer fingerprint keeps it.
    plan.min_fp_len = state.fp_len
    return plan


def _tail_hash(file: SourceFile, cursor: int) -> str:
    begin = max(0, cursor - TAIL_BYTES)
    try:
        with file.path.open("rb") as handle:
            handle.seek(begin)
            return hashlib.sha256(handle.read(cursor - begin)).hexdigest()
    except FileNotFoundError:
        raise SourceGone(file.path, "gone before it was read (rotated or deleted)") from None
    except OSError as exc:
        raise SourceError(file.path, f"cannot read ({exc.strerror})") from None
