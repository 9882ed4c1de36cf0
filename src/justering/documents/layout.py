"""Page geometry shared by the renderer (which draws the footer boxes) and the
signer (which puts each visible signature stamp inside its box).

Millimetres with the origin top-left are what the renderer uses; PDF points
with the origin bottom-left are what signature fields use.
"""

from __future__ import annotations

from dataclasses import dataclass

from justering.model.roles import Role

__all__ = [
    "BODY_BOTTOM_MM",
    "FOOTER_BOTTOM_MM",
    "FOOTER_CAPTION_MM",
    "FOOTER_HEIGHT_MM",
    "FOOTER_ROLES",
    "MARGIN_LEFT_MM",
    "MARGIN_RIGHT_MM",
    "MARGIN_TOP_MM",
    "MM_PER_POINT",
    "PAGE_HEIGHT_MM",
    "PAGE_WIDTH_MM",
    "Box",
    "footer_box",
    "stamp_box",
]

MM_PER_POINT = 25.4 / 72

PAGE_WIDTH_MM = 210.0
PAGE_HEIGHT_MM = 297.0
MARGIN_LEFT_MM = 20.0
MARGIN_RIGHT_MM = 20.0
MARGIN_TOP_MM = 18.0

FOOTER_BOTTOM_MM = 12.0
"""Distance from the bottom edge of the page to the bottom of the footer boxes."""
FOOTER_HEIGHT_MM = 24.0
FOOTER_CAPTION_MM = 5.0
"""Height of the caption strip at the top of each box; stamps go below it."""
BODY_BOTTOM_MM = FOOTER_BOTTOM_MM + FOOTER_HEIGHT_MM + 8.0
"""Text of the extract never comes closer to the bottom edge than this."""

FOOTER_ROLES: tuple[Role, ...] = (Role.CHAIR, Role.ADJUSTER, Role.CERTIFIER)


@dataclass(frozen=True)
class Box:
    """A rectangle in millimetres, origin top-left of the page."""

    x: float
    y: float
    width: float
    height: float

    def to_pdf_points(self) -> tuple[int, int, int, int]:
        """(x1, y1, x2, y2) in PDF points, origin bottom-left, as pyHanko wants."""
        x1 = self.x / MM_PER_POINT
        x2 = (self.x + self.width) / MM_PER_POINT
        y1 = (PAGE_HEIGHT_MM - self.y - self.height) / MM_PER_POINT
        y2 = (PAGE_HEIGHT_MM - self.y) / MM_PER_POINT
        return round(x1), round(y1), round(x2), round(y2)


def footer_box(role: Role) -> Box:
    """The whole footer box of ``role``, caption included."""
    width = (PAGE_WIDTH_MM - MARGIN_LEFT_MM - MARGIN_RIGHT_MM) / len(FOOTER_ROLES)
    column = FOOTER_ROLES.index(role)
    return Box(
        x=MARGIN_LEFT_MM + column * width,
        y=PAGE_HEIGHT_MM - FOOTER_BOTTOM_MM - FOOTER_HEIGHT_MM,
        width=width,
        height=FOOTER_HEIGHT_MM,
    )


def stamp_box(role: Role, index: int = 0, count: int = 1) -> Box:
    """Where the visible stamp of the ``index``-th of ``count`` signers in ``role`` goes.

    The area under the caption is split side by side when two adjusters share
    the box.
    """
    if not 0 <= index < count:
        raise ValueError(f"signer index {index} outside 0..{count - 1}")
    box = footer_box(role)
    inset = 1.0
    width = (box.width - 2 * inset) / count
    return Box(
        x=box.x + inset + index * width,
        y=box.y + FOOTER_CAPTION_MM,
        width=width,
        height=box.height - FOOTER_CAPTION_MM - inset,
    )
