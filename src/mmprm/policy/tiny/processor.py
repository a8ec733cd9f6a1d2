"""A Qwen2-VL processor that needs no torchvision.

The stock `Qwen2VLProcessor` always builds a video processor, and the video
processor imports torchvision, which CPU-only installs often lack. Images
are all a math policy needs, so this subclass keeps the image processor (the
PIL one) and the tokenizer only. It loads any Qwen2-VL or Qwen2.5-VL
checkpoint's processor files as well as the tiny policy's.
"""

from __future__ import annotations

from pathlib import Path

from transformers import AutoTokenizer
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
    Qwen2VLImageProcessorPil,
)
from transformers.models.qwen2_vl.processing_qwen2_vl import Qwen2VLProcessor

# The tiny policy sees 112x112 images: (112/14)^2 patches, merged 2x2 into 16 tokens.
TINY_IMAGE_SIDE = 112


class ImageOnlyQwen2VLProcessor(Qwen2VLProcessor):
    """`Qwen2VLProcessor` without the video processor (hence without torchvision)."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        kwargs.pop("video_processor", None)
        super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)

    @classmethod
    def from_pretrained(cls, path: str | Path, **kwargs) -> ImageOnlyQwen2VLProcessor:
        """Load the tokenizer and the image settings of a Qwen2-VL-style folder, offline."""
        tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
        image_processor = Qwen2VLImageProcessorPil.from_pretrained(path, **kwargs)
        return cls(image_processor=image_processor, tokenizer=tokenizer, chat_template=tokenizer.chat_template)


def tiny_image_processor() -> Qwen2VLImageProcessorPil:
    """Images are resized to at most 112x112 pixels (16 image tokens)."""
    side = TINY_IMAGE_SIDE
    return Qwen2VLImageProcessorPil(
        size={"shortest_edge": 56 * 56, "longest_edge": side * side}, patch_size=14, merge_size=2
    )
