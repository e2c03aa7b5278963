"""Geotagged witness photos for the demo, made here (the real test photos' licences forbid shipping them).

Six street scenes (`scene.py`): the same black car GH-417-KT seen by three witnesses, three other cars, and the
same bystander (a real, public-domain face: `SAMPLES.md`) in three photos. Each carries phone-like EXIF: GPS
position and UTC time stamp, DateTimeOriginal with OffsetTimeOriginal, make and model.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction

from PIL import Image

from infra.demo.scene import Bystander, Car, render

GPS_IFD = 0x8825
EXIF_IFD = 0x8769
PHOTO_SIZE = (2048, 1536)  # a 3-megapixel phone photo: plates stay readable, extraction stays quick
BLACK, RED, WHITE, BLUE = (15, 15, 18), (200, 30, 30), (235, 235, 238), (30, 60, 170)
SUSPECT_PLATE = "GH-417-KT"
Box = tuple[int, int, int, int]  # left, top, right, bottom


@dataclass(frozen=True)
class SamplePhoto:
    name: str
    witness: int  # which of the demo's witnesses sends it (one submission each)
    lat: float
    lon: float
    taken_at: datetime  # aware, in the witness's local zone
    cars: tuple[Car, ...]
    bystander: Bystander | None = None


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


def render_photo(photo: SamplePhoto, *, seed: int = 0) -> tuple[Image.Image, Box | None]:
    """The scene and the bystander's box (None without one)."""
    return render(photo.cars, photo.bystander, size=PHOTO_SIZE, seed=seed)


def encode_jpeg(photo: SamplePhoto, *, seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    render_photo(photo, seed=seed)[0].save(buffer, "JPEG", quality=90, exif=exif_for(photo))
    return buffer.getvalue()


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92)  # no EXIF: a query crop carries no witness metadata
    return buffer.getvalue()


def face_query(photo: SamplePhoto, *, seed: int = 0) -> bytes:
    """What an investigator would crop from a photo to ask "where else is this person?": the bystander's head."""
    image, box = render_photo(photo, seed=seed)
    if box is None:
        raise ValueError(f"{photo.name} shows no bystander to crop a face from")
    left, top, right, bottom = box
    return _jpeg(image.crop((left, top, right, top + (bottom - top) * 3 // 5)))


def car_query(photo: SamplePhoto, car: Car, *, seed: int = 0) -> bytes:
    """A crop around one car of the photo, as an investigator would send to "vehicles like this one"."""
    image, _ = render_photo(photo, seed=seed)
    width, height = image.size
    w, cx, base = car.width * width, car.x * width, car.ground * height
    # About the box YOLOX draws round the car: body and tyres, a little of the shadow.
    left, top, right, bottom = cx - 0.55 * w, base - 0.8 * w, cx + 0.55 * w, base + 0.04 * w
    return _jpeg(image.crop((round(left), round(top), round(right), round(bottom))))


def demo_photos(centre_lat: float, centre_lon: float, start: datetime) -> list[SamplePhoto]:
    """Six photos around an incident, by three witnesses (two each), minutes apart and a few dozen metres apart."""
    paris = timezone(timedelta(hours=1))
    start = start.astimezone(paris)
    scenes: list[tuple[tuple[Car, ...], Bystander | None]] = [
        ((Car(BLACK, SUSPECT_PLATE, 0.5, 0.84, 0.15),), Bystander(0.02, 0.5)),
        ((Car(BLACK, SUSPECT_PLATE, 0.32, 0.80, 0.14), Car(RED, "AB-123-CD", 0.60, 0.72, 0.14)),
         Bystander(0.74, 0.42, mirror=True, light=0.85)),
        ((Car(BLACK, SUSPECT_PLATE, 0.62, 0.86, 0.16),), None),
        ((Car(RED, "AB-123-CD", 0.5, 0.84, 0.13),), Bystander(0.05, 0.55, light=1.1)),
        ((Car(WHITE, "EF-456-GH", 0.55, 0.85, 0.16), Car(BLUE, "JK-789-LM", 0.2, 0.74, 0.14)), None),
        ((Car(BLUE, "JK-789-LM", 0.6, 0.86, 0.15),), None),
    ]
    return [
        SamplePhoto(
            name=f"witness-{index + 1:02d}.jpg",
            witness=index % 3,
            lat=centre_lat + 0.0004 * (index - 2),
            lon=centre_lon + 0.0003 * ((index * 7) % 5 - 2),
            taken_at=start + timedelta(minutes=4 * index),
            cars=cars,
            bystander=bystander,
        )
        for index, (cars, bystander) in enumerate(scenes)
    ]
