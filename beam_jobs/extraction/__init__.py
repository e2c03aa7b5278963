"""Pure per-photo extraction: decode, EXIF facts, capture time, place, hashes, thumbnail.

Every function here takes bytes or a PIL image and returns values; the Beam DoFns in the
extraction job wrap them and route `RejectedPhoto` to the dead-letter output.
"""
