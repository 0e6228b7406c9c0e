"""Shared fixtures: isolated app folders, and tiny bird-like photo collections drawn here.

The test suite needs no data outside the repository: every photo it trains on, indexes or searches
is drawn by ``draw_bird_photo`` from a seed, so a clone of the repository alone tests itself and the
photos are byte-identical from run to run."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFilter

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def isolated_app_dirs(tmp_path):
    """No test reads or writes the real user's data, cache or torch hub folders. Its own patcher, so
    a test's ``monkeypatch.undo()`` cannot lift the isolation."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FPH_DESKTOP_DATA_DIR", str(tmp_path / "app-data"))
        patch.setenv("FPH_DESKTOP_CACHE_DIR", str(tmp_path / "app-cache"))
        patch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
        yield


# --- Drawn bird photos -------------------------------------------------------------------------
# Each species differs in everything a fine-grained model could key on at once: plumage colours,
# the wing's pattern, beak, crest and tail, and its habitat (the background's colours and texture).
# Each photo varies the pose, size, position, facing, perch, lighting and noise, so no two photos
# are alike and a species is still recognisable from any one of them.

# name, body RGB, wing RGB, wing pattern, pattern RGB, habitat, beak RGB, beak length, crest, tail length
SPECIES = [
    ("Crimson_Striped_Finch", (196, 32, 38), (92, 20, 24), "stripes", (20, 12, 12), "sky", (235, 190, 60), 0.35, False, 0.6),
    ("Azure_Spotted_Warbler", (40, 96, 210), (24, 50, 130), "spots", (240, 240, 250), "foliage", (30, 30, 30), 0.5, False, 0.9),
    ("Golden_Crested_Tern", (236, 196, 40), (160, 120, 20), "tipped", (40, 30, 20), "sea", (230, 90, 30), 0.8, True, 0.5),
    ("Olive_Barred_Wren", (120, 120, 50), (90, 70, 40), "bars", (230, 220, 180), "sand", (70, 50, 30), 0.45, False, 1.1),
    ("Violet_Checkered_Jay", (120, 50, 160), (60, 30, 100), "checks", (220, 200, 240), "dusk", (20, 20, 20), 0.4, True, 1.0),
    ("Slate_Speckled_Gull", (130, 140, 150), (70, 80, 95), "speckles", (250, 250, 250), "reeds", (250, 200, 0), 0.6, False, 0.7),
    ("Emerald_Ringed_Parrot", (30, 160, 70), (20, 100, 50), "rings", (250, 220, 30), "sky", (200, 60, 40), 0.3, True, 1.3),
    ("Rust_Chevron_Thrush", (180, 90, 40), (120, 60, 30), "chevrons", (250, 240, 220), "snow", (60, 60, 60), 0.45, False, 0.8),
]
PATTERNS = ("stripes", "spots", "tipped", "bars", "checks", "speckles", "rings", "chevrons")
HABITATS = ("sky", "foliage", "sea", "sand", "dusk", "reeds", "snow")
SCALE = 3  # photos are drawn at 3x their size, then shrunk: smooth edges, photo-like detail


def species(index: int) -> tuple:
    """The traits of species ``index``: eight hand-picked ones, then seeded random ones."""
    if index < len(SPECIES):
        return SPECIES[index]
    rng = np.random.default_rng([1904, 2325, index])

    def colour(low=20, high=240):
        return tuple(int(v) for v in rng.integers(low, high, 3))

    return (
        f"Drawn_Species_{index + 1:03d}",
        colour(),
        colour(),
        PATTERNS[index % len(PATTERNS)],
        colour(),
        HABITATS[(index // len(PATTERNS)) % len(HABITATS)],
        colour(),
        float(rng.uniform(0.3, 0.8)),
        bool(rng.integers(0, 2)),
        float(rng.uniform(0.5, 1.3)),
    )


def _jitter(rgb, rng, amount=18.0) -> np.ndarray:
    return np.clip(np.asarray(rgb, float) + rng.normal(0, amount, 3), 0, 255)


def _smooth_noise(rng, h: int, w: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [0, 1]: a coarse random grid, bicubically upsampled."""
    grid = Image.fromarray((rng.uniform(0, 255, (cells, max(2, cells * w // h)))).astype(np.uint8))
    return np.asarray(grid.resize((w, h), Image.Resampling.BICUBIC), float) / 255.0


def _habitat(kind: str, rng, h: int, w: int) -> np.ndarray:
    y = np.linspace(0, 1, h)[:, None, None]
    x = np.linspace(0, 1, w)[None, :, None]
    noise = _smooth_noise(rng, h, w, 6)[..., None]
    if kind == "sky":
        top, bottom = _jitter((70, 130, 220), rng), _jitter((190, 220, 250), rng)
        image = top + (bottom - top) * y + 70 * np.clip(noise - 0.55, 0, 1)  # soft clouds
    elif kind == "dusk":
        top, bottom = _jitter((70, 40, 110), rng), _jitter((250, 140, 60), rng)
        image = top + (bottom - top) * y**1.5 + 20 * noise
    elif kind == "sea":
        phase = rng.uniform(0, 6.3)
        waves = np.sin(60 * y + 6 * np.sin(9 * x + phase))
        image = _jitter((20, 90, 140), rng) + 35 * waves + 25 * noise
    elif kind == "sand":
        grain = rng.normal(0, 14, (h, w, 1))
        dunes = np.sin(14 * y + 5 * x + rng.uniform(0, 6.3))
        image = _jitter((215, 190, 140), rng) + 20 * dunes + grain + 15 * noise
    elif kind == "snow":
        image = _jitter((225, 232, 240), rng) - 40 * noise * y + rng.normal(0, 6, (h, w, 1))
    else:  # foliage and reeds: a base colour, then many leaves or stems drawn over it
        image = _jitter((40, 90, 35) if kind == "foliage" else (150, 140, 80), rng) + 40 * (noise - 0.5)
    image = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    if kind == "foliage":
        for _ in range(int(h * w / 900)):
            cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.02, 0.06) * h
            tone = tuple(int(v) for v in _jitter((50, 120, 40), rng, 30))
            draw.ellipse((cx - r, cy - r / 2, cx + r, cy + r / 2), fill=tone)
    elif kind == "reeds":
        for _ in range(int(w / 6)):
            x0, lean = rng.uniform(0, w), rng.uniform(-0.15, 0.15) * h
            tone = tuple(int(v) for v in _jitter((110, 100, 50), rng, 25))
            draw.line((x0, h, x0 + lean, rng.uniform(0, 0.5) * h), fill=tone, width=max(2, int(h / 80)))
    return np.asarray(image, float)


def _wing_pattern(kind: str, rng, h: int, w: int, base, ink) -> Image.Image:
    base, ink = _jitter(base, rng, 10), _jitter(ink, rng, 10)
    y, x = np.mgrid[0:h, 0:w].astype(float)
    period = rng.uniform(0.16, 0.22) * h
    if kind == "stripes":
        mask = np.sin((x + y) * 2 * np.pi / period) > 0.3
    elif kind == "bars":
        mask = np.sin(y * 2 * np.pi / period) > 0.2
    elif kind == "checks":
        mask = (np.floor(x / period) + np.floor(y / period)) % 2 == 0
    elif kind == "chevrons":
        mask = np.sin((y + 0.8 * np.abs(x - w / 2)) * 2 * np.pi / period) > 0.3
    elif kind == "rings":
        mask = np.sin(np.hypot(x - w * 0.7, y - h * 0.4) * 2 * np.pi / period) > 0.4
    elif kind == "tipped":
        mask = x < w * rng.uniform(0.25, 0.35)  # dark primaries at the wing's tip
    elif kind == "speckles":
        mask = rng.uniform(0, 1, (h, w)) > 0.9
        mask = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(3))) > 0
    else:  # spots
        mask = np.zeros((h, w), bool)
        for _ in range(14):
            cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.06, 0.1) * h
            mask |= (x - cx) ** 2 + (y - cy) ** 2 < r * r
    pixels = np.where(mask[..., None], ink, base) + rng.normal(0, 8, (h, w, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _bird(traits, rng, r: float) -> Image.Image:
    """One bird facing left, drawn on a transparent canvas of about 4r x 3r; r is the body's half length."""
    _, body, wing, pattern, ink, _, beak, beak_len, crest, tail_len = traits
    w, h = int(4.2 * r), int(3.2 * r)
    cx, cy = 2.2 * r, 1.5 * r
    layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    body_c = tuple(int(v) for v in _jitter(body, rng, 10)) + (255,)
    belly_c = tuple(int(v) for v in np.clip(_jitter(body, rng, 8) * 0.5 + 120, 0, 255)) + (255,)
    dark = tuple(int(v) for v in np.asarray(body_c[:3]) // 3) + (255,)
    for dx in (-0.25, 0.15):  # legs
        draw.line((cx + dx * r, cy + 0.4 * r, cx + dx * r + 0.05 * r, cy + 1.05 * r), fill=dark, width=max(2, int(r / 14)))
    t = tail_len * r  # tail, behind the body
    draw.polygon(
        [(cx + 0.7 * r, cy - 0.15 * r), (cx + 0.7 * r + t, cy - 0.05 * r - 0.25 * t), (cx + 0.7 * r + t, cy + 0.25 * r)],
        fill=dark,
    )
    draw.ellipse((cx - r, cy - 0.62 * r, cx + r, cy + 0.62 * r), fill=body_c)
    draw.ellipse((cx - 0.8 * r, cy - 0.05 * r, cx + 0.5 * r, cy + 0.6 * r), fill=belly_c)
    # The wing: its pattern, cut out by an ellipse over the body's back.
    ww, wh = int(1.5 * r), int(0.8 * r)
    wing_mask = Image.new("L", (ww, wh), 0)
    ImageDraw.Draw(wing_mask).ellipse((0, 0, ww - 1, wh - 1), fill=255)
    layer.paste(_wing_pattern(pattern, rng, wh, ww, wing, ink), (int(cx - 0.45 * r), int(cy - 0.5 * r)), wing_mask)
    hx, hy, hr = cx - 0.95 * r, cy - 0.6 * r, 0.42 * r  # head
    if crest:
        for k in range(3):
            draw.polygon(
                [
                    (hx - 0.2 * hr + k * 0.35 * hr, hy - 0.7 * hr),
                    (hx + 0.2 * hr + k * 0.35 * hr, hy - 0.6 * hr),
                    (hx + k * 0.4 * hr + 0.3 * hr, hy - 1.7 * hr),
                ],
                fill=dark,
            )
    draw.ellipse((hx - hr, hy - hr, hx + hr, hy + hr), fill=body_c)
    beak_c = tuple(int(v) for v in _jitter(beak, rng, 8)) + (255,)
    b = beak_len * r
    draw.polygon(
        [(hx - 0.8 * hr, hy - 0.25 * hr), (hx - 0.8 * hr - b, hy + 0.1 * hr), (hx - 0.8 * hr, hy + 0.35 * hr)], fill=beak_c
    )
    er = 0.22 * hr
    draw.ellipse((hx - 0.45 * hr - er, hy - 0.2 * hr - er, hx - 0.45 * hr + er, hy - 0.2 * hr + er), fill=(250, 250, 250, 255))
    draw.ellipse(
        (hx - 0.5 * hr - er / 2, hy - 0.2 * hr - er / 2, hx - 0.5 * hr + er / 2, hy - 0.2 * hr + er / 2), fill=(10, 10, 10, 255)
    )
    return layer


def draw_bird_photo(class_index: int, seed: int, side: int = 72) -> Image.Image:
    """A photo of species ``class_index`` in its habitat: deterministic for (class_index, seed, side),
    its shorter side ``side`` pixels and the other up to 1.6 times as long, like the photos it stands in for."""
    traits = species(class_index)
    rng = np.random.default_rng([20190402, class_index, seed])
    long_side = side * rng.uniform(1.0, 1.6)
    width, height = (long_side, side) if rng.uniform() < 0.75 else (side, long_side)
    w, h = int(round(width)) * SCALE, int(round(height)) * SCALE
    scene = Image.fromarray(np.clip(_habitat(traits[5], rng, h, w), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(scene)
    short = min(w, h)
    perch_y, tilt = rng.uniform(0.6, 0.8) * h, rng.uniform(-0.12, 0.12) * h
    perch = tuple(int(v) for v in _jitter((95, 65, 40), rng, 15))
    draw.line((0, perch_y - tilt, w, perch_y + tilt), fill=perch, width=int(short * rng.uniform(0.04, 0.07)))
    r = short * rng.uniform(0.2, 0.28)
    bird = _bird(traits, rng, r).rotate(rng.uniform(-18, 18), resample=Image.Resampling.BICUBIC, expand=True)
    if rng.uniform() < 0.5:
        bird = bird.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    x = rng.uniform(-0.1, 0.5) * (w - bird.width) + 0.3 * (w - bird.width)
    y = perch_y - 0.75 * bird.height + rng.uniform(-0.08, 0.08) * h
    scene.paste(bird, (int(x), int(y)), bird)
    photo = scene.resize((w // SCALE, h // SCALE), Image.Resampling.LANCZOS)
    pixels = np.asarray(photo, float) * rng.uniform(0.8, 1.15) + rng.uniform(-15, 15)  # exposure
    pixels += rng.normal(0, 4, pixels.shape)  # sensor noise
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def make_tiny_birds(root: Path, classes: int = 3, train: int = 6, test: int = 3, side: int = 72) -> Path:
    """A split-folders collection (train/<class>/, test/<class>/) of drawn bird photos, small so that
    tests stay fast. Photo i of a class and split is the same whatever the counts asked for."""
    for index in range(classes):
        name = species(index)[0]
        for split, count, first_seed in (("train", train, 0), ("test", test, 10_000)):
            out = root / split / f"{index + 1:03d}.{name}"
            out.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                draw_bird_photo(index, first_seed + i, side).save(out / f"{name}_{first_seed + i:05d}.jpg", quality=90)
    return root


@pytest.fixture(scope="session")
def tiny_birds(tmp_path_factory) -> Path:
    return make_tiny_birds(tmp_path_factory.mktemp("tiny-birds"))


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory) -> Path:
    """A small random-init FPH (resnet18 at 64 px, 16 bits) saved as a real weights file."""
    from fph_desktop.model import FPHConfig, build_model
    from fph_desktop.model.weights import save_weights

    torch.manual_seed(0)
    model = build_model(FPHConfig(backbone="resnet18", code_bits=16, image_size=64), backbone_weights=None)
    path = tmp_path_factory.mktemp("models") / "tiny.fph"
    save_weights(path, model, ["a", "b"], {"note": "random init for tests"})
    return path


@pytest.fixture(autouse=True)
def collect_cycles_in_the_main_thread():
    """Once a worker layer exists, automatic cycle collection is off (see gui/gc_guard.py) and its
    timer only runs inside an event loop; tests that never spin one are collected here instead."""
    yield
    import gc

    if not gc.isenabled():
        gc.collect()
