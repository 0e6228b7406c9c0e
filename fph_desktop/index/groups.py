"""Look-alike groups: every pair of photos within a Hamming radius, grouped around a representative.

Pairs: all pairs, exactly, by the project's XOR + popcount kernel over the codes padded to machine
words, in blocks of the upper triangle that stay in cache, on a few threads (numpy releases the GIL).
At the sizes a folder has this beats an index: 10,000 48-bit codes are 50M comparisons, a few
hundredths of a second (``benchmarks/groups.py``); multi-index hashing only pays when the radius is
small against the code length, which radius 8 of 48 bits is not.

Groups: **every member is within the radius of its group's representative** (star groups), not the
connected components of the pairs. Components chain: photo A looks like B, B like C, …, so at a
useful radius one component swallows a whole species, a whole trip, and the reported group no longer
means "these are look-alikes". Here a representative is chosen greedily: the photo with the most
ungrouped photos within the radius (then the smallest sum of distances to them, then the larger file,
which is more likely the original, then file order); it takes all of them, and the next
representative is chosen among the photos left. So a group is the ball of radius R around one photo,
two members are at most 2R apart, and "d" next to a member always means "its distance to the first
photo of the group", as a photographer reading a group from its top expects. A chain A–B–C (A and C
farther than R apart) is one group around B; a longer chain splits into several. Photos with the same
code land in the same group (unless one of them is an edited copy, which goes with its original, see
below), so byte-identical copies (which share their code and perceptual hash) are never split.

Exact duplicates are byte-identical files (the same content hash in the index), not photos at
distance 0: two different photos can share a code. Groups come largest first, then tightest (the
smallest largest distance to the representative), then in file order of the representative.

Edited copies (given the perceptual hashes and outputs the index stores): a photo resized,
recompressed or brightened is an *edited copy* of another when their perceptual hashes and codes are
both close (:mod:`.copies`); a crop, whose thumbnail changed, when the stored outputs put it far
nearer that photo than any other (:func:`attach_by_outputs`). Each set of photos linked that way is
grouped as one photo, its largest file standing for it (the likeliest original), and then unpacked
into the group: so an edited copy lands in its original's group even when its code moved farther than
the radius (its "d" then says so), and is flagged ``edited_copy_of`` that file. Without them (an index
not yet updated since schema 2, or a caller that passes none) photos are grouped by their codes alone.

numpy only: no torch, no Qt, so the command line and the GUI's worker both call it directly.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..codes import as_words, distance_dtype, hamming_distances, popcount
from ..errors import BadArgumentError
from .copies import COPY_CANDIDATES, COPY_OUTPUT_RATIO, COPY_PHOTO_RADIUS, copy_code_radius, photo_hash_array
from .search import _Scratch, default_threads, hamming_topk
from .store import IndexStore, IndexStoreError

# Rows x columns compared per block (the XOR buffer is 4 MB at one word a code): measured 1.5x faster
# than the search's 64 x 2048 for 10,000 codes on the development machine, and than 256 x 4096.
_ROW_BLOCK = 128
_COLUMN_BLOCK = 4096

# More pairs than this means the radius is too wide to group anything usefully (and the pair list
# would take gigabytes); the caller is told to lower it.
MAX_PAIRS = 10_000_000


@dataclass(frozen=True)
class GroupMember:
    relpath: str  # relative to the indexed folder, "/" separators
    distance: int  # Hamming distance to the group's representative (0 for the representative)
    size: int  # bytes on disk when it was indexed
    exact_duplicate: bool  # byte-identical to another member of this group
    duplicate_of: str | None = None  # for the second and later copies: the first member with the same bytes
    edited_copy_of: str | None = None  # an edited copy (resized, recompressed, …) of this member: its likeliest original


@dataclass(frozen=True)
class Group:
    """Photos within the radius of the first one (the representative), nearest first."""

    members: tuple[GroupMember, ...]

    @property
    def representative(self) -> GroupMember:
        return self.members[0]

    @property
    def max_distance(self) -> int:
        return max(m.distance for m in self.members)

    @property
    def redundant_copies(self) -> int:
        """Members that are byte-identical to an earlier member: removable without losing a photo."""
        return sum(m.duplicate_of is not None for m in self.members)

    @property
    def edited_copies(self) -> int:
        """Members that are edited copies of another member (not byte-identical to it)."""
        return sum(m.edited_copy_of is not None for m in self.members)

    def __len__(self) -> int:
        return len(self.members)


@dataclass(frozen=True)
class Grouping:
    """The groups of one index at one radius, and what they were found among."""

    radius: int
    code_bits: int
    photos: int  # photos compared
    pairs: int  # pairs of photos within the radius (each set of edited copies counted as one photo)
    groups: list[Group]
    edited_copies: int = 0  # photos that are copies (edited or byte-identical) of another, grouped with it


def find_pairs(
    packed_codes: np.ndarray, code_bits: int, radius: int, threads: int | None = None, max_pairs: int = MAX_PAIRS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair ``i < j`` of codes within ``radius`` (inclusive): ``(i, j, distance)`` arrays, in
    (i, j) order. Raises :class:`BadArgumentError` past ``max_pairs`` pairs (the radius is too wide)."""
    if radius < 0:
        raise BadArgumentError(f"the radius must be 0 or more, not {radius}")
    words = as_words(np.asarray(packed_codes, dtype=np.uint8))
    n_codes = len(words)
    dist_dtype = distance_dtype(code_bits)
    found = [0]  # pairs so far, over all threads: an early stop for a radius that is far too wide

    def pairs_of_rows(start: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        stop = min(start + _ROW_BLOCK, n_codes)
        queries = words[start:stop]
        scratch = _Scratch(stop - start, min(_COLUMN_BLOCK, n_codes - start), words.dtype, dist_dtype)
        firsts, seconds, dists = [], [], []
        for offset in range(start, n_codes, _COLUMN_BLOCK):  # the upper triangle: codes from `start` on
            block = words[offset : offset + _COLUMN_BLOCK]
            dist = scratch.distances(queries, block)
            mask = scratch.mask[:, : len(block)]
            np.less_equal(dist, radius, out=mask)
            flat = np.flatnonzero(mask)  # 1-D: several times faster than 2-D nonzero on a sparse mask
            if not len(flat):
                continue
            rows, columns = np.divmod(flat, len(block))
            first, second = rows + start, columns + offset
            if offset < stop:  # the diagonal block: each pair once, no code with itself
                keep = second > first
                first, second, rows, columns = first[keep], second[keep], rows[keep], columns[keep]
            firsts.append(first.astype(np.int32))
            seconds.append(second.astype(np.int32))
            dists.append(dist[rows, columns].astype(np.uint16))
            found[0] += len(first)
            if found[0] > max_pairs:
                raise BadArgumentError(
                    f"radius {radius} makes more than {max_pairs:,} pairs of look-alikes among {n_codes:,} photos "
                    f"({code_bits}-bit codes): too wide to group look-alikes",
                    hint="choose a smaller radius",
                )
        empty = np.empty(0, np.int32)
        return (
            np.concatenate(firsts) if firsts else empty,
            np.concatenate(seconds) if seconds else empty,
            np.concatenate(dists) if dists else np.empty(0, np.uint16),
        )

    starts = range(0, n_codes, _ROW_BLOCK)
    threads = min(threads or default_threads(), len(starts))
    if threads <= 1:
        parts = [pairs_of_rows(s) for s in starts]
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            parts = list(pool.map(pairs_of_rows, starts))
    if not parts:
        return np.empty(0, np.int32), np.empty(0, np.int32), np.empty(0, np.uint16)
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(3))


def star_groups(
    n_codes: int, first: np.ndarray, second: np.ndarray, distances: np.ndarray, sizes: Sequence[int] | None = None
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """The grouping rule on ids (see the module's docstring): ``(representative, members,
    distances)`` for each group of two or more, in the order they were formed; ``members`` excludes
    the representative and ``distances`` are to it. ``sizes`` (file sizes) break ties."""
    first, second = np.asarray(first, np.int64), np.asarray(second, np.int64)
    distances = np.asarray(distances, np.int64)
    sources = np.concatenate([first, second])
    order = np.argsort(sources, kind="stable")
    neighbours = np.concatenate([second, first])[order]
    neighbour_distance = np.concatenate([distances, distances])[order]
    indptr = np.zeros(n_codes + 1, np.int64)
    np.cumsum(np.bincount(sources, minlength=n_codes), out=indptr[1:])
    # Per photo, among the photos not yet grouped: how many are within the radius, their total distance.
    degree = np.diff(indptr)
    distance_sum = np.bincount(sources, weights=np.concatenate([distances, distances]), minlength=n_codes).astype(np.int64)
    sizes = np.zeros(n_codes, np.int64) if sizes is None else np.asarray(sizes, np.int64)
    # A lazy max-heap: a photo's key only gets worse (its degree drops whenever its sum does), so an
    # entry found out of date is pushed back with its current key.
    heap = [(-int(degree[v]), int(distance_sum[v]), -int(sizes[v]), int(v)) for v in np.flatnonzero(degree)]
    heapq.heapify(heap)
    grouped = np.zeros(n_codes, bool)
    groups = []
    while heap:
        neg_degree, total, neg_size, v = heapq.heappop(heap)
        if grouped[v]:
            continue
        if -neg_degree != degree[v] or total != distance_sum[v]:
            if degree[v] > 0:
                heapq.heappush(heap, (-int(degree[v]), int(distance_sum[v]), neg_size, v))
            continue
        lo, hi = indptr[v], indptr[v + 1]
        free = ~grouped[neighbours[lo:hi]]
        members, member_distances = neighbours[lo:hi][free], neighbour_distance[lo:hi][free]
        grouped[v] = True
        grouped[members] = True
        groups.append((v, members, member_distances))
        # The photos just grouped no longer count for their ungrouped neighbours.
        taken = np.concatenate([[v], members])
        starts, counts = indptr[taken], indptr[taken + 1] - indptr[taken]
        edges = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
        others = neighbours[edges]
        left = ~grouped[others]
        np.subtract.at(degree, others[left], 1)
        np.subtract.at(distance_sum, others[left], neighbour_distance[edges][left])
    return groups


def copy_sets(
    packed_codes: np.ndarray,
    code_bits: int,
    photo_hashes: Sequence[bytes | None],
    threads: int | None = None,
    real_codes: np.ndarray | None = None,
) -> np.ndarray:
    """For each photo, the id of the set of copies it belongs to: ``(N,) int64``, the smallest id of
    its set (itself when it is nobody's copy). Linked (union-find): photos whose perceptual hashes
    are within ``COPY_PHOTO_RADIUS`` *and* codes within ``copy_code_radius`` (:mod:`.copies`); then,
    given the stored outputs, a photo that no such link reached joins the set it is by far the
    nearest to (:func:`attach_by_outputs`: the crops)."""
    n_codes = len(photo_hashes)
    root = np.arange(n_codes, dtype=np.int64)
    words, valid = photo_hash_array(photo_hashes)
    ids = np.flatnonzero(valid)
    code_words = as_words(np.asarray(packed_codes, dtype=np.uint8)) if n_codes else None
    links: list[tuple[np.ndarray, np.ndarray]] = []
    if len(ids) >= 2:
        try:
            first, second, _ = find_pairs(words[ids].view(np.uint8).reshape(-1, 8), 64, COPY_PHOTO_RADIUS, threads)
        except BadArgumentError:  # thousands of near-identical frames: too many to tell apart; codes alone
            first = second = np.empty(0, np.int64)
        first, second = ids[first], ids[second]
        keep = popcount(code_words[first] ^ code_words[second]).sum(axis=1) <= copy_code_radius(code_bits)
        links.append((first[keep], second[keep]))
    sets = _union(root, links)
    if real_codes is not None and n_codes > 2:
        sets = _union(sets.copy(), [attach_by_outputs(sets, code_words, code_bits, real_codes, threads)])
    return sets


def attach_by_outputs(
    sets: np.ndarray, code_words: np.ndarray, code_bits: int, real_codes: np.ndarray, threads: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(photos, photos of the sets they join)``: each photo alone in its set whose nearest photo by
    the stored outputs, among its :data:`~.copies.COPY_CANDIDATES` nearest by code and within
    ``copy_code_radius``, is more than ``1 / COPY_OUTPUT_RATIO`` times nearer than the nearest photo
    of any other set. A relative test: a crop is far nearer its original than any look-alike is
    (birds-dev: 67–77 % of the crops that the perceptual hash misses pass it, and none of 2,602
    photos without a copy), while no absolute distance tells a crop from a look-alike."""
    n_codes = len(sets)
    alone = np.flatnonzero(np.bincount(sets, minlength=n_codes)[sets] == 1)
    k = min(COPY_CANDIDATES + 1, n_codes)
    joining, joined = [], []
    reals = np.asarray(real_codes, np.float32)
    for start in range(0, len(alone), 2048):
        photos = alone[start : start + 2048]
        hamming, candidates = hamming_topk(code_words[photos], code_words, k, code_bits, threads)
        difference = reals[candidates] - reals[photos][:, None, :]
        outputs = np.einsum("ijk,ijk->ij", difference, difference) / 4.0
        outputs[candidates == photos[:, None]] = np.inf
        reachable = np.where(hamming <= copy_code_radius(code_bits), outputs, np.inf)
        nearest = np.argmin(reachable, axis=1)
        rows = np.arange(len(photos))
        nearest_set = sets[candidates[rows, nearest]]
        others = np.where(sets[candidates] != nearest_set[:, None], outputs, np.inf).min(axis=1)
        near = reachable[rows, nearest]
        take = np.isfinite(near) & np.isfinite(others) & (near < COPY_OUTPUT_RATIO * others)
        joining.append(photos[take])
        joined.append(candidates[rows, nearest][take])
    empty = np.empty(0, np.int64)
    return (np.concatenate(joining) if joining else empty, np.concatenate(joined) if joined else empty)


def _union(root: np.ndarray, links: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """``root`` (each photo's set id) with the pairs in ``links`` joined; each set named by its
    smallest id."""

    def find(v: int) -> int:
        while root[v] != v:
            root[v] = root[root[v]]
            v = int(root[v])
        return v

    for first, second in links:
        for a, b in zip(first.tolist(), second.tolist(), strict=True):
            ra, rb = find(a), find(b)
            if ra != rb:
                root[max(ra, rb)] = min(ra, rb)
    while True:  # every link points to a smaller id: flatten until each photo points at its set's first
        flat = root[root]
        if np.array_equal(flat, root):
            return root
        root = flat


def find_groups(
    packed_codes: np.ndarray,
    code_bits: int,
    radius: int,
    relpaths: Sequence[str],
    sizes: Sequence[int] | None = None,
    content_hashes: Sequence[bytes | None] | None = None,
    *,
    min_size: int = 2,
    threads: int | None = None,
    photo_hashes: Sequence[bytes | None] | None = None,
    real_codes: np.ndarray | None = None,
) -> Grouping:
    """The look-alike groups of codes in file order (``relpaths[i]`` holds ``packed_codes[i]``), with
    byte-identical members flagged by ``content_hashes`` and, given ``photo_hashes`` (perceptual
    hashes, and ``real_codes``, the stored outputs (N, q), for crops), edited copies kept with their
    originals and flagged; groups smaller than ``min_size`` are left out."""
    packed_codes = np.asarray(packed_codes, dtype=np.uint8)
    n_codes = len(relpaths)
    sizes = [0] * n_codes if sizes is None else list(sizes)
    content_hashes = [None] * n_codes if content_hashes is None else list(content_hashes)
    # Each set of edited copies is grouped as one photo: its largest file (then the first in file order).
    if photo_hashes is not None:
        sets = copy_sets(packed_codes, code_bits, photo_hashes, threads, real_codes)
    else:
        sets = np.arange(n_codes)
    heads = np.flatnonzero(sets == np.arange(n_codes))
    by_set = {int(h): [int(h)] for h in heads}
    for v in np.flatnonzero(sets != np.arange(n_codes)):
        by_set[int(sets[v])].append(int(v))
    standing = {h: max(members, key=lambda i: (sizes[i], -i)) for h, members in by_set.items()}
    units = np.array(sorted(standing.values()), dtype=np.int64)
    unit_members = {standing[h]: members for h, members in by_set.items()}

    first, second, distances = find_pairs(packed_codes[units], code_bits, radius, threads)
    stars = [
        (int(v), [int(m) for m in members])
        for v, members, _ in star_groups(len(units), first, second, distances, [sizes[i] for i in units])
    ]
    taken = np.zeros(len(units), bool)
    for v, members in stars:
        taken[[v, *members]] = True
    # A set of copies that no look-alike group took is a group of its own.
    stars += [(u, []) for u in np.flatnonzero(~taken).tolist() if len(unit_members[int(units[u])]) > 1]
    code_words = as_words(packed_codes)
    formed = []
    for v, members in stars:
        representative = int(units[v])
        ids = [i for u in (v, *members) for i in unit_members[int(units[u])]]
        if len(ids) < min_size:
            continue
        dists = hamming_distances(code_words[[representative]], code_words[ids], code_bits)[0].astype(int).tolist()
        # The representative first, then nearest first, then file order.
        order = sorted(range(len(ids)), key=lambda k: (ids[k] != representative, dists[k], ids[k]))
        ids, dists = [ids[k] for k in order], [dists[k] for k in order]
        copy_of = {i: standing[int(sets[i])] for i in ids if standing[int(sets[i])] != i}
        formed.append((representative, _members(ids, dists, relpaths, sizes, content_hashes, copy_of)))
    formed.sort(key=lambda item: (-len(item[1]), max(m.distance for m in item[1]), item[0]))
    groups = [Group(members) for _, members in formed]
    copies = int(np.sum(sets != np.arange(n_codes)))
    return Grouping(radius=radius, code_bits=code_bits, photos=n_codes, pairs=len(first), groups=groups, edited_copies=copies)


def _members(ids, dists, relpaths, sizes, content_hashes, copy_of) -> tuple[GroupMember, ...]:
    holders: dict[bytes, list[int]] = {}
    for i in ids:
        if content_hashes[i] is not None:
            holders.setdefault(content_hashes[i], []).append(i)
    # Of byte-identical files, the one kept as the original is the one a copy was made from, as far as
    # names tell: the shortest name ("IMG_1234.jpg", not "IMG_1234 (1).jpg", "IMG_1234 copy.jpg" or
    # "IMG_1234-2.jpg", which all sort before it), then file order.
    originals = {h: min(same, key=lambda i: (len(Path(relpaths[i]).stem), i)) for h, same in holders.items()}
    members = []
    for i, d in zip(ids, dists, strict=True):
        same = holders.get(content_hashes[i], []) if content_hashes[i] is not None else []
        original = originals[content_hashes[i]] if same and originals[content_hashes[i]] != i else None
        edited_from = copy_of.get(i)
        if edited_from is not None and content_hashes[i] is not None and content_hashes[i] == content_hashes[edited_from]:
            edited_from = None  # byte-identical to it: an exact duplicate, flagged as such
        members.append(
            GroupMember(
                relpath=relpaths[i],
                distance=d,
                size=int(sizes[i]),
                exact_duplicate=len(same) > 1,
                duplicate_of=relpaths[original] if original is not None else None,
                edited_copy_of=relpaths[edited_from] if edited_from is not None else None,
            )
        )
    return tuple(members)


def groups_in_index(
    db_path: str | Path, radius: int, *, min_size: int = 2, threads: int | None = None, left_out: Collection[str] = ()
) -> Grouping:
    """:func:`find_groups` over an index file, read straight from SQLite (no model is loaded), with
    the edited copies its perceptual hashes find; the photos whose relpaths are in ``left_out`` (for
    instance moved to the trash since the last update) are left out."""
    with IndexStore(db_path) as store:
        code_bits = int(store.get_meta("code_bits", "0") or 0)
        if code_bits <= 0 or code_bits % 8:
            raise IndexStoreError(f"records no usable code length ({code_bits})", db_path, "index the folder again to rebuild it")
        data = store.load_search_data(code_bits)
        files = store.encoded_files()
    relpaths, packed, real = data.relpaths, data.packed, data.real
    hashes = [None if not ok else word.tobytes() for word, ok in zip(data.photo_hashes, data.photo_hash_valid, strict=True)]
    if left_out:
        gone = set(left_out)
        keep = [i for i, relpath in enumerate(relpaths) if relpath not in gone]
        relpaths, packed, hashes = [relpaths[i] for i in keep], packed[keep], [hashes[i] for i in keep]
        real = None if real is None else real[keep]
    # Read apart, so a file re-indexed in between may miss its facts: it is then no one's exact copy.
    facts = [files.get(relpath, (0, None)) for relpath in relpaths]
    return find_groups(
        packed,
        code_bits,
        radius,
        relpaths,
        [size for size, _ in facts],
        [content_hash for _, content_hash in facts],
        min_size=min_size,
        threads=threads,
        photo_hashes=hashes,
        real_codes=real,
    )


__all__ = [
    "Group",
    "GroupMember",
    "Grouping",
    "MAX_PAIRS",
    "copy_sets",
    "find_groups",
    "find_pairs",
    "groups_in_index",
    "star_groups",
]
