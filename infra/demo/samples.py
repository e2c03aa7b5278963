"""Synthetic, geotagged witness photos for the demo (ours to ship: the real test photos' licences forbid it).

Each photo is a drawn street scene with a car of a given colour and a readable plate, carrying phone-like EXIF:
GPS position, DateTimeOriginal with OffsetTimeOriginal, GPS UTC time stamp, make and model.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction

from PIL import Image, ImageDraw, ImageFont

GPS_IFD = 0x8825
EXIF_IFD = 0x8769


@dataclass(frozen=True)
class SamplePhoto:
    name: str
    lat: float
    lon: float
    taken_at: datetime  # aware, in the witness's local zone
    car_colour: tuple[int, int, int]
    plate: str


def _dms(value: float) -> tuple[Fraction, Fraction, Fraction]:
    value = abs(value)
    degrees = int(value)
    minutes_full = (value - degrees) * 60
    minutes = int(minutes_full)
    seconds = Fraction(round((minutes_full - minutes) * 60 * 10000), 10000)
    return Fraction(degrees), Fraction(minutes), seconds


def _offset_text(moment: datetime) -> str:
    offset = moment.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def exif_for(photo: SamplePhoto) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "WitnessDemo"  # Make
    exif[0x0110] = "Sample Phone"  # Model
    exif[0x0132] = photo.taken_at.strftime("%Y:%m:%d %H:%M:%S")  # DateTime
    details = exif.get_ifd(EXIF_IFD)
    details[0x9003] = photo.taken_at.strftime("%Y:%m:%d %H:%M:%S")  # DateTimeOriginal
    details[0x9011] = _offset_text(photo.taken_at)  # OffsetTimeOriginal
    utc = photo.taken_at.astimezone(UTC)
    gps = exif.get_ifd(GPS_IFD)
    gps[1] = "N" if photo.lat >= 0 else "S"
    gps[2] = _dms(photo.lat)
    gps[3] = "E" if photo.lon >= 0 else "W"
    gps[4] = _dms(photo.lon)
    gps[7] = (Fraction(utc.hour), Fraction(utc.minute), Fraction(utc.second))
    gps[29] = utc.strftime("%Y:%m:%d")
    return exif


def render_scene(photo: SamplePhoto, *, size: tuple[int, int] = (1280, 960), seed: int = 0) -> Image.Image:
    rng = random.Random(seed)
    width, height = size
    image = Image.new("RGB", size, (135, 170, 205))
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, height * 0.55, width, height], fill=(70, 70, 75))  # road
    for x in range(0, width, 160):  # buildings behind
        shade = rng.randrange(120, 200)
        draw.rectangle(
            [x, height * 0.15 + rng.randrange(60), x + 150, height * 0.55], fill=(shade, shade - 20, shade - 40)
        )
    left, top = width * 0.25, height * 0.45
    draw.rounded_rectangle([left, top + 80, left + 640, top + 300], radius=40, fill=photo.car_colour)  # body
    draw.rounded_rectangle([left + 120, top, left + 500, top + 110], radius=30, fill=photo.car_colour)  # cabin
    draw.rectangle([left + 150, top + 20, left + 470, top + 90], fill=(170, 200, 220))  # windows
    for wheel_x in (left + 120, left + 520):
        draw.ellipse([wheel_x - 60, top + 240, wheel_x + 60, top + 360], fill=(20, 20, 20))
    plate_box = [left + 220, top + 200, left + 420, top + 250]
    draw.rectangle(plate_box, fill=(245, 245, 245), outline=(0, 0, 0), width=3)
    font = ImageFont.load_default(size=36)
    draw.text((plate_box[0] + 100, plate_box[1] + 25), photo.plate, fill=(0, 0, 0), font=font, anchor="mm")
    return image


def encode_jpeg(photo: SamplePhoto, *, seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    render_scene(photo, seed=seed).save(buffer, "JPEG", quality=90, exif=exif_for(photo))
    return buffer.getvalue()


def demo_photos(centre_lat: float, centre_lon: float, start: datetime) -> list[SamplePhoto]:
    """Six photos around an incident: the same black car seen by three witnesses, two other cars."""
    paris = timezone(timedelta(hours=1))
    start = start.astimezone(paris)
    cars = [
        ((15, 15, 18), "GH-417-KT"),
        ((15, 15, 18), "GH-417-KT"),
        ((15, 15, 18), "GH-417-KT"),
        ((200, 30, 30), "AB-123-CD"),
        ((240, 240, 240), "EF-456-GH"),
        ((30, 60, 170), "JK-789-LM"),
    ]
    photos = []
    for index, (colour, plate) in enumerate(cars):
        photos.append(
            SamplePhoto(
                name=f"witness-{index + 1:02d}.jpg",
                lat=centre_lat + 0.0004 * (index - 2),
                lon=centre_lon + 0.0003 * ((index * 7) % 5 - 2),
                taken_at=start + timedelta(minutes=4 * index),
                car_colour=colour,
                plate=plate,
            )
        )
    return photos
