"""Are a photo's edited copies found among its look-alikes? (issue #11, "Edited copies are found")

300 photos of birds-dev (12 of each of its 25 species, many of them look-alikes: three albatrosses,
four auklets, three blackbirds, three buntings, three cormorants; seeded, from the test split, topped
up from train where a species has fewer), each written with 4 edits into one folder of 1,500 photos:

    scaled75   75 % of the width and height (LANCZOS), JPEG quality 95
    crop85     the centre 85 % of the width and height, JPEG quality 95
    jpeg40     the same pixels saved again at JPEG quality 40
    bright120  +20 % brightness (``ImageEnhance.Brightness(1.2)``), JPEG quality 95

The originals are copied byte for byte. Every file gets a shuffled name (``IMG_0000.jpg`` …), so the
file order that breaks distance ties says nothing about which photos belong together.

The folder is indexed the way a user does (the default model: EfficientNet-Lite0 with unsupervised
ITQ codes fitted on the folder, then ``Library.update``), and each photo is searched with
``Library.search_images`` (what the window and ``fph-desktop search`` go through), its own entry left
out:

- **original -> edit**: each of an original's 4 edits is in the original's top 5;
- **edit -> original**: the original is in the edit's top 5;
- **groups**: each edit is in its original's look-alike group (``groups_in_index`` at the radius, and
  the codes alone, as groups were before the index stored perceptual hashes and outputs);
- **look-alikes**: the same searches' precision of the species among the top 10, leaving out the
  query's own copies, and the mAP@all of birds-dev's test split against its train split indexed with
  its own default model (query = test, relevant = same species), so a fix for copies is seen not to
  cost look-alike search.

The set, the fitted models and the indexes are kept in ``--work`` (default under /tmp), so a second run
only searches (an index made by an older version is upgraded by that run's update); ``--fresh``
starts over. ``--ranking`` picks the rankings measured (``library.RANKINGS``: ``default``, edited
copies first then the stored outputs; ``outputs``, the outputs alone; ``hamming``, the codes alone, as
every search was before). ``--per-species 36`` (900 photos, 4,500 files) is a harder run: more
look-alikes around each photo.

    python benchmarks/edited_copies.py --index-cost 400 --out benchmarks/results/edited_copies.json
    python benchmarks/edited_copies.py --per-species 36 --work /tmp/fph-edited-copies-36 --no-map
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

BIRDS = Path(__file__).resolve().parents[2] / "shared" / "data" / "birds-dev"
EDITS = ("scaled75", "crop85", "jpeg40", "bright120")


def pick_photos(birds: Path, per_species: int, seed: int) -> list[dict]:
    with open(birds / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    rng = np.random.default_rng(seed)
    chosen = []
    for species in sorted({r["class"] for r in rows}):
        test = [r for r in rows if r["class"] == species and r["split"] == "test"]
        train = [r for r in rows if r["class"] == species and r["split"] == "train"]
        picked = [test[i] for i in rng.permutation(len(test))[:per_species]]
        if len(picked) < per_species:
            picked += [train[i] for i in rng.permutation(len(train))[: per_species - len(picked)]]
        chosen += picked
    return chosen


def edit(image, kind: str):
    """``(edited image, JPEG quality)`` of one of :data:`EDITS`."""
    from PIL import Image, ImageEnhance

    w, h = image.size
    if kind == "scaled75":
        return image.resize((round(w * 0.75), round(h * 0.75)), Image.Resampling.LANCZOS), 95
    if kind == "crop85":
        cw, ch = round(w * 0.85), round(h * 0.85)
        left, top = (w - cw) // 2, (h - ch) // 2
        return image.crop((left, top, left + cw, top + ch)), 95
    if kind == "jpeg40":
        return image, 40
    if kind == "bright120":
        return ImageEnhance.Brightness(image).enhance(1.2), 95
    raise ValueError(kind)


def make_set(birds: Path, folder: Path, per_species: int, seed: int) -> list[dict]:
    """Write the 5 x N photos into ``folder``; returns one entry per source photo:
    ``{species, source, original, edits: {kind: file name}}``."""
    from PIL import Image

    manifest = folder.parent / "set.json"
    if manifest.is_file() and folder.is_dir():
        return json.loads(manifest.read_text())
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    photos = pick_photos(birds, per_species, seed)
    names = [f"IMG_{i:04d}.jpg" for i in np.random.default_rng(seed + 1).permutation(len(photos) * (1 + len(EDITS)))]
    entries = []
    for n, row in enumerate(photos):
        mine = names[n * (1 + len(EDITS)) : (n + 1) * (1 + len(EDITS))]
        shutil.copyfile(birds / row["relpath"], folder / mine[0])
        with Image.open(birds / row["relpath"]) as source:
            image = source.convert("RGB")
        for kind, name in zip(EDITS, mine[1:], strict=True):
            edited, quality = edit(image, kind)
            edited.save(folder / name, quality=quality)
        entries.append(
            {
                "species": row["class"],
                "source": row["relpath"],
                "original": mine[0],
                "edits": dict(zip(EDITS, mine[1:], strict=True)),
            }
        )
    manifest.write_text(json.dumps(entries, indent=1))
    return entries


def index_folder(folder: Path, progress=None):
    """The default model fitted on ``folder`` and its index brought up to date, as the app does."""
    from fph_desktop.index.default_model import ensure_unsupervised_model
    from fph_desktop.index.library import Library

    start = time.perf_counter()
    model = ensure_unsupervised_model(progress, folder)
    fitted = time.perf_counter() - start
    library = Library.open(folder, model)
    start = time.perf_counter()
    report = library.update(progress)
    return library, {"fit_s": round(fitted, 1), "update_s": round(time.perf_counter() - start, 1), "update": report.summary()}


def ranked_lists(library, folder: Path, names: list[str], k: int, ranking: str) -> dict[str, list[str]]:
    """Each photo's top ``k`` (its own entry left out) by ``search_images`` with ``ranking``."""
    options = {} if ranking == "default" else {"ranking": ranking}
    results = library.search_images([folder / name for name in names], k=k + 1, **options)
    out = {}
    for name, result in zip(names, results, strict=True):
        if result.error:
            raise RuntimeError(result.error)
        out[name] = [r.relpath for r in result.results if r.relpath != name][:k]
    return out


def measure_copies(entries, lists: dict[str, list[str]], k: int) -> dict:
    species_of = {}
    source_of = {}
    for n, e in enumerate(entries):
        for name in [e["original"], *e["edits"].values()]:
            species_of[name], source_of[name] = e["species"], n
    forward = {kind: [] for kind in EDITS}
    backward = {kind: [] for kind in EDITS}
    precision = []
    for e in entries:
        top = lists[e["original"]][:k]
        for kind, name in e["edits"].items():
            forward[kind].append(name in top)
            backward[kind].append(e["original"] in lists[name][:k])
        # Look-alikes: the original's top 10 among other sources' photos.
        others = [p for p in lists[e["original"]] if source_of[p] != source_of[e["original"]]][:10]
        precision.append(np.mean([species_of[p] == e["species"] for p in others]) if others else np.nan)

    def summary(found: dict[str, list[bool]]) -> dict:
        return {"all": round(float(np.mean(sum(found.values(), []))), 4)} | {
            kind: round(float(np.mean(v)), 4) for kind, v in found.items()
        }

    return {
        "original_to_edit": summary(forward),
        "edit_to_original": summary(backward),
        "species_precision_at_10_other_sources": round(float(np.nanmean(precision)), 4),
    }


def measure_groups(entries, db_path: Path, radius: int, variant: str) -> dict:
    """Each edit in its original's group? ``variant``: ``default`` (``groups_in_index``: edited copies
    by perceptual hash and stored outputs) or ``codes`` (the codes alone, as groups were before)."""
    from fph_desktop.index.groups import find_groups, groups_in_index
    from fph_desktop.index.store import IndexStore

    start = time.perf_counter()
    if variant == "default":
        grouping = groups_in_index(db_path, radius)
    else:
        with IndexStore(db_path) as store:
            code_bits = int(store.get_meta("code_bits"))
            relpaths, packed = store.load_codes(code_bits // 8)
            files = store.encoded_files()
        facts = [files[relpath] for relpath in relpaths]
        grouping = find_groups(packed, code_bits, radius, relpaths, [f[0] for f in facts], [f[1] for f in facts])
    seconds = time.perf_counter() - start
    group_of = {m.relpath: g for g, group in enumerate(grouping.groups) for m in group.members}
    flagged = {m.relpath: m.edited_copy_of for group in grouping.groups for m in group.members}
    found = {kind: [] for kind in EDITS}
    owner = {}
    for n, e in enumerate(entries):
        for name in [e["original"], *e["edits"].values()]:
            owner[name] = n
        for kind, name in e["edits"].items():
            found[kind].append(e["original"] in group_of and group_of.get(name) == group_of[e["original"]])
    # Flags: a member said to be an edited copy of another, right when both come from one source photo.
    said = [(a, b) for a, b in flagged.items() if b]
    right = sum(owner[a] == owner[b] for a, b in said)
    sizes = [len(g) for g in grouping.groups]
    return {
        "variant": variant,
        "radius": radius,
        "edit_in_original_group": {"all": round(float(np.mean(sum(found.values(), []))), 4)}
        | {kind: round(float(np.mean(v)), 4) for kind, v in found.items()},
        "groups": len(grouping.groups),
        "photos_grouped": int(sum(sizes)),
        "largest_group": int(max(sizes, default=0)),
        "edited_copy_flags": len(said),
        "edited_copy_flags_right": int(right),
        "seconds": round(seconds, 3),
    }


def look_alike_map(birds: Path, work: Path, ranking: str) -> dict:
    """mAP@all of birds-dev (query = test, database = train indexed with its own default model)."""
    with open(birds / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    train = work / "birds-train"
    if not train.is_dir():
        shutil.copytree(birds / "train", train)
    library, timing = index_folder(train)
    size = len(library)
    test = [r for r in rows if r["split"] == "test"]
    options = {} if ranking == "default" else {"ranking": ranking}
    results = library.search_images([birds / r["relpath"] for r in test], k=size, **options)
    aps = []
    for row, result in zip(test, results, strict=True):
        relevant = np.array([r.relpath.split("/")[0] == row["class"] for r in result.results], float)
        hits = np.cumsum(relevant)
        aps.append(float((hits / np.arange(1, len(relevant) + 1) * relevant).sum() / max(1.0, relevant.sum())))
    return {"map_at_all": round(float(np.mean(aps)), 4), "queries": len(test), "database": size} | timing


def index_cost(birds: Path, work: Path, photos: int, rounds: int) -> dict:
    """What storing the outputs and the perceptual hash costs the indexer: ``update_index`` on
    ``photos`` birds-dev photos, in this process, alternating with the hash switched off (the outputs
    were always computed; only storing them is new), ``rounds`` times each. Model: Lite0 under a
    random 48-bit ITQ head (``index_throughput.make_model``: the cost, not the codes, matters)."""
    import statistics

    from index_throughput import make_model

    from fph_desktop.index import indexer
    from fph_desktop.model.encoder import Encoder

    folder = work / f"cost-{photos}"
    if not folder.is_dir():
        for path in sorted(birds.rglob("*.jpg"))[:photos]:
            target = folder / path.relative_to(birds)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    encoder = Encoder.load(make_model(work / "cost-model.fph"))
    hashing = indexer.photo_hash
    rates: dict[str, list[float]] = {"with the hash": [], "without": []}
    try:
        order = (["without", "with the hash", "with the hash", "without"] * rounds)[: 2 * rounds]  # ABBA
        for r, label in enumerate(order):
            indexer.photo_hash = hashing if label == "with the hash" else (lambda image: None)
            data = work / f"cost-data-{r}"
            os.environ["FPH_DESKTOP_DATA_DIR"] = str(data)
            start = time.perf_counter()
            report = indexer.update_index(folder, encoder)
            rates[label].append(report.encoded / (time.perf_counter() - start))
            shutil.rmtree(data)
    finally:
        indexer.photo_hash = hashing
        os.environ["FPH_DESKTOP_DATA_DIR"] = str(work / "appdata")
    medians = {label: statistics.median(v) for label, v in rates.items()}
    return {
        "photos": photos,
        "engine": encoder.describe_engine(),
        "photos_per_s": {label: [round(x, 1) for x in v] for label, v in rates.items()},
        "median_photos_per_s": {label: round(v, 1) for label, v in medians.items()},
        "ratio_with_to_without": round(medians["with the hash"] / medians["without"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--birds", type=Path, default=BIRDS)
    parser.add_argument("--work", type=Path, default=Path("/tmp/fph-edited-copies"), help="set, models and indexes (kept)")
    parser.add_argument("--fresh", action="store_true", help="delete --work first")
    parser.add_argument("--per-species", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-k", type=int, default=5)
    parser.add_argument(
        "--ranking", nargs="+", default=["default", "outputs", "hamming"], help="search_images' rankings to measure"
    )
    parser.add_argument("--radius", type=int, nargs="*", default=[4, 8], help="group radii to measure")
    parser.add_argument("--no-map", action="store_true", help="skip birds-dev's look-alike mAP")
    parser.add_argument(
        "--index-cost", type=int, default=0, metavar="N", help="also time indexing N photos with and without the hash"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args()

    if args.fresh:
        shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True, exist_ok=True)
    os.environ["FPH_DESKTOP_DATA_DIR"] = str(args.work / "appdata")
    os.environ["FPH_DESKTOP_CACHE_DIR"] = str(args.work / "appcache")
    import torch

    torch.set_num_threads(args.threads)

    folder = args.work / "photos"
    start = time.perf_counter()
    entries = make_set(args.birds, folder, args.per_species, args.seed)
    print(f"set: {len(entries)} photos x {1 + len(EDITS)} in {folder} ({time.perf_counter() - start:.0f} s)", flush=True)
    library, timing = index_folder(folder)
    print(f"indexed {len(library)} photos: {timing}", flush=True)
    names = sorted(n for e in entries for n in [e["original"], *e["edits"].values()])
    out = {
        "set": {"photos": len(names), "sources": len(entries), "edits": list(EDITS), "seed": args.seed, "k": args.k},
        "model": library.encoder.info.describe(),
        "code_bits": library.encoder.code_bits,
        "indexing": timing,
        "rankings": {},
    }
    for ranking in args.ranking:
        start = time.perf_counter()
        lists = ranked_lists(library, folder, names, max(args.k, 20), ranking)
        figures = measure_copies(entries, lists, args.k)
        figures["search_s_per_query"] = round((time.perf_counter() - start) / len(names), 4)
        if not args.no_map:
            figures["birds_dev_look_alikes"] = look_alike_map(args.birds, args.work, ranking)
        out["rankings"][ranking] = figures
        print(f"{ranking}: {json.dumps(figures)}", flush=True)
    out["groups"] = [measure_groups(entries, library.db_path, r, v) for r in args.radius for v in ("codes", "default")]
    for g in out["groups"]:
        print(f"groups: {json.dumps(g)}", flush=True)
    if args.index_cost:
        out["index_cost"] = index_cost(args.birds, args.work, args.index_cost, rounds=2)
        print(f"index cost: {json.dumps(out['index_cost'])}", flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
