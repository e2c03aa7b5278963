"""Drawing the demo's street scenes: a street, cars seen from behind with readable plates, and a bystander.

The cars are drawn at the size a real car has in a phone photo of a street (a sixth of the frame's width or
less): YOLOX-Nano, trained on photographs, recognises these flat drawings as cars at that size and not when
a drawn car fills the frame. The bystander is the public-domain NASA portrait shipped in `assets/` (see
`SAMPLES.md`), pasted with a soft edge so that the same real face appears in several photos.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

BUST_ASSET = "astronaut-bust.jpg"
ROAD_TOP = 0.56  # where the pavement ends and the road starts, as a share of the height
Colour = tuple[int, int, int]


@dataclass(frozen=True)
class Car:
    colour: Colour
    plate: str
    x: float  # centre, share of the width
    ground: float  # bottom of the tyres, share of the height
    width: float  # share of the width


@dataclass(frozen=True)
class Bystander:
    x: float  # left edge, share of the width
    height: float  # share of the height; the figure stands on the bottom edge of the frame
    mirror: bool = False
    light: float = 1.0  # brightness factor (street lighting differs between shots)


@cache
def bust() -> Image.Image:
    """The bystander's head and shoulders (RGB), from the package's assets."""
    with resources.as_file(resources.files("infra.demo") / "assets" / BUST_ASSET) as path, Image.open(path) as image:
        return image.convert("RGB")


def _shade(colour: Colour, factor: float, lift: int = 0) -> Colour:
    r, g, b = (min(255, max(0, round(c * factor + lift))) for c in colour)
    return r, g, b


def draw_street(image: Image.Image, rng: random.Random) -> None:
    width, height = image.size
    draw = ImageDraw.Draw(image)
    road_top = round(height * ROAD_TOP)
    step = width // 8
    for x in range(0, width, step):  # facades with lit and unlit windows
        shade = rng.randrange(105, 185)
        top = round(height * 0.08) + rng.randrange(round(height * 0.08))
        draw.rectangle([x, top, x + step - 6, road_top], fill=(shade, shade - 15, shade - 35))
        for wy in range(top + step // 5, road_top - step // 3, step // 3):
            for wx in range(x + step // 10, x + step - step // 5, step // 4):
                lit = rng.random() < 0.35
                draw.rectangle([wx, wy, wx + step // 8, wy + step // 6], fill=(235, 200, 120) if lit else (55, 65, 80))
    draw.rectangle([0, road_top - height // 40, width, road_top], fill=(150, 150, 152))  # pavement kerb
    draw.rectangle([0, road_top, width, height], fill=(70, 70, 74))  # road
    for x in range(-width // 20, width, width // 6):  # lane markings
        draw.rectangle([x, round(height * 0.78), x + width // 12, round(height * 0.79)], fill=(210, 210, 200))


def draw_car(image: Image.Image, car: Car) -> None:
    """A hatchback from behind: shadow, tyres, body, cabin, rear window, lights, bumper and the plate."""
    width, height = image.size
    draw = ImageDraw.Draw(image)
    w = car.width * width
    cx, base = car.x * width, car.ground * height
    h, top = w * 0.78, car.ground * height - w * 0.78
    draw.ellipse([cx - w * 0.58, base - w * 0.06, cx + w * 0.58, base + w * 0.05], fill=(25, 25, 28))
    for side in (-1, 1):
        x = cx + side * w * 0.36
        draw.rounded_rectangle([x - w * 0.09, base - w * 0.2, x + w * 0.09, base], radius=round(w * 0.03),
                               fill=(18, 18, 18))
    draw.rounded_rectangle([cx - w * 0.5, top + h * 0.42, cx + w * 0.5, base - w * 0.1], radius=round(w * 0.07),
                           fill=car.colour)
    draw.polygon([(cx - w * 0.42, top + h * 0.45), (cx - w * 0.32, top + h * 0.05), (cx + w * 0.32, top + h * 0.05),
                  (cx + w * 0.42, top + h * 0.45)], fill=car.colour)
    draw.polygon([(cx - w * 0.36, top + h * 0.40), (cx - w * 0.28, top + h * 0.11), (cx + w * 0.28, top + h * 0.11),
                  (cx + w * 0.36, top + h * 0.40)], fill=(38, 40, 44))
    draw.polygon([(cx - w * 0.2, top + h * 0.38), (cx - w * 0.08, top + h * 0.13), (cx, top + h * 0.13),
                  (cx - w * 0.12, top + h * 0.38)], fill=(88, 90, 94))  # reflection on the rear window
    for side in (-1, 1):
        near, far = cx + side * w * 0.30, cx + side * w * 0.47
        draw.rounded_rectangle([min(near, far), top + h * 0.47, max(near, far), top + h * 0.58],
                               radius=round(w * 0.015), fill=(190, 20, 25))
    draw.rounded_rectangle([cx - w * 0.5, base - w * 0.2, cx + w * 0.5, base - w * 0.1], radius=round(w * 0.04),
                           fill=_shade(car.colour, 0.55))
    draw.line([cx - w * 0.45, top + h * 0.44, cx + w * 0.45, top + h * 0.44], fill=_shade(car.colour, 1.25, 25),
              width=max(2, round(w * 0.008)))
    _draw_plate(draw, cx, top + h * 0.62, w * 0.40, w * 0.09, car.plate)


def _draw_plate(draw: ImageDraw.ImageDraw, cx: float, top: float, plate_w: float, plate_h: float, text: str) -> None:
    box = (cx - plate_w / 2, top, cx + plate_w / 2, top + plate_h)
    draw.rectangle(box, fill=(245, 245, 245), outline=(0, 0, 0), width=2)
    draw.rectangle((box[0], box[1], box[0] + plate_w * 0.08, box[3]), fill=(0, 60, 170))  # EU band
    font = ImageFont.load_default(size=max(8, round(plate_h * 0.72)))
    draw.text(((box[0] + box[2]) / 2 + plate_w * 0.04, (box[1] + box[3]) / 2), text, fill=(0, 0, 0), font=font,
              anchor="mm")


def paste_bystander(image: Image.Image, person: Bystander) -> tuple[int, int, int, int]:
    """Paste the bust standing on the frame's bottom edge; returns its box (left, top, right, bottom)."""
    source = ImageOps.mirror(bust()) if person.mirror else bust()
    target_h = round(person.height * image.height)
    target_w = round(source.width * target_h / source.height)
    figure = source.resize((target_w, target_h), Image.Resampling.LANCZOS)
    if person.light != 1.0:
        figure = Image.eval(figure, lambda v: min(255, round(v * person.light)))
    mask = Image.new("L", figure.size, 0)
    ImageDraw.Draw(mask).ellipse([target_w * 0.04, 0, target_w * 0.96, target_h * 1.6], fill=255)
    mask = mask.filter(ImageFilter.GaussianBlur(target_w / 40))
    left, top = round(person.x * image.width), image.height - target_h
    image.paste(figure, (left, top), mask)
    return left, top, left + target_w, image.height


def photographic(image: Image.Image, rng: random.Random) -> Image.Image:
    """Lens softness and sensor noise, so the drawing looks less like vector art to the models."""
    softened = np.asarray(image.filter(ImageFilter.GaussianBlur(1.0)), dtype=np.float32)
    noise = np.random.default_rng(rng.randrange(2**32)).normal(0.0, 4.0, softened.shape)
    return Image.fromarray(np.clip(softened + noise, 0, 255).astype(np.uint8))


def render(cars: tuple[Car, ...], bystander: Bystander | None, *, size: tuple[int, int], seed: int
           ) -> tuple[Image.Image, tuple[int, int, int, int] | None]:
    """The scene, and the bystander's box when there is one."""
    rng = random.Random(seed)
    image = Image.new("RGB", size, (118, 148, 186))
    draw_street(image, rng)
    for car in sorted(cars, key=lambda c: c.ground):  # farther cars first
        draw_car(image, car)
    box = paste_bystander(image, bystander) if bystander else None
    return photographic(image, rng), box
