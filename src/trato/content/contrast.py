"""Text contrast as WCAG 2.x measures it, from CSS colour values written in e-mail HTML.

``parse_color("#0a0")``, ``parse_color("rgb(0 170 0 / 50%)")``, ``parse_color("navy")`` give
``(r, g, b, alpha)`` or None for what cannot be judged (``inherit``, ``var(--x)``, a Jinja
tag); ``contrast_ratio(fg, bg)`` is (L1 + 0.05) / (L2 + 0.05) from relative luminance, 1..21.
WCAG AA asks 4.5:1 for body text and 3:1 for large text (24 px, or 18.66 px bold).
"""

from __future__ import annotations

import re

RGB = tuple[float, float, float]

# CSS Color Module Level 4 named colours, the ones mail clients know
NAMED = {
    "black": "000000", "silver": "c0c0c0", "gray": "808080", "grey": "808080", "white": "ffffff",
    "maroon": "800000", "red": "ff0000", "purple": "800080", "fuchsia": "ff00ff",
    "magenta": "ff00ff", "green": "008000", "lime": "00ff00", "olive": "808000",
    "yellow": "ffff00", "navy": "000080", "blue": "0000ff", "teal": "008080", "aqua": "00ffff",
    "cyan": "00ffff", "orange": "ffa500", "aliceblue": "f0f8ff", "antiquewhite": "faebd7",
    "aquamarine": "7fffd4", "azure": "f0ffff", "beige": "f5f5dc", "bisque": "ffe4c4",
    "blanchedalmond": "ffebcd", "blueviolet": "8a2be2", "brown": "a52a2a",
    "burlywood": "deb887", "cadetblue": "5f9ea0", "chartreuse": "7fff00",
    "chocolate": "d2691e", "coral": "ff7f50", "cornflowerblue": "6495ed", "cornsilk": "fff8dc",
    "crimson": "dc143c", "darkblue": "00008b", "darkcyan": "008b8b",
    "darkgoldenrod": "b8860b", "darkgray": "a9a9a9", "darkgrey": "a9a9a9",
    "darkgreen": "006400", "darkkhaki": "bdb76b", "darkmagenta": "8b008b",
    "darkolivegreen": "556b2f", "darkorange": "ff8c00", "darkorchid": "9932cc",
    "darkred": "8b0000", "darksalmon": "e9967a", "darkseagreen": "8fbc8f",
    "darkslateblue": "483d8b", "darkslategray": "2f4f4f", "darkslategrey": "2f4f4f",
    "darkturquoise": "00ced1", "darkviolet": "9400d3", "deeppink": "ff1493",
    "deepskyblue": "00bfff", "dimgray": "696969", "dimgrey": "696969",
    "dodgerblue": "1e90ff", "firebrick": "b22222", "floralwhite": "fffaf0",
    "forestgreen": "228b22", "gainsboro": "dcdcdc", "ghostwhite": "f8f8ff", "gold": "ffd700",
    "goldenrod": "daa520", "greenyellow": "adff2f", "honeydew": "f0fff0", "hotpink": "ff69b4",
    "indianred": "cd5c5c", "indigo": "4b0082", "ivory": "fffff0", "khaki": "f0e68c",
    "lavender": "e6e6fa", "lavenderblush": "fff0f5", "lawngreen": "7cfc00",
    "lemonchiffon": "fffacd", "lightblue": "add8e6", "lightcoral": "f08080",
    "lightcyan": "e0ffff", "lightgoldenrodyellow": "fafad2", "lightgray": "d3d3d3",
    "lightgrey": "d3d3d3", "lightgreen": "90ee90", "lightpink": "ffb6c1",
    "lightsalmon": "ffa07a", "lightseagreen": "20b2aa", "lightskyblue": "87cefa",
    "lightslategray": "778899", "lightslategrey": "778899", "lightsteelblue": "b0c4de",
    "lightyellow": "ffffe0", "limegreen": "32cd32", "linen": "faf0e6",
    "mediumaquamarine": "66cdaa", "mediumblue": "0000cd", "mediumorchid": "ba55d3",
    "mediumpurple": "9370db", "mediumseagreen": "3cb371", "mediumslateblue": "7b68ee",
    "mediumspringgreen": "00fa9a", "mediumturquoise": "48d1cc", "mediumvioletred": "c71585",
    "midnightblue": "191970", "mintcream": "f5fffa", "mistyrose": "ffe4e1",
    "moccasin": "ffe4b5", "navajowhite": "ffdead", "oldlace": "fdf5e6", "olivedrab": "6b8e23",
    "orangered": "ff4500", "orchid": "da70d6", "palegoldenrod": "eee8aa",
    "palegreen": "98fb98", "paleturquoise": "afeeee", "palevioletred": "db7093",
    "papayawhip": "ffefd5", "peachpuff": "ffdab9", "peru": "cd853f", "pink": "ffc0cb",
    "plum": "dda0dd", "powderblue": "b0e0e6", "rebeccapurple": "663399",
    "rosybrown": "bc8f8f", "royalblue": "4169e1", "saddlebrown": "8b4513", "salmon": "fa8072",
    "sandybrown": "f4a460", "seagreen": "2e8b57", "seashell": "fff5ee", "sienna": "a0522d",
    "skyblue": "87ceeb", "slateblue": "6a5acd", "slategray": "708090", "slategrey": "708090",
    "snow": "fffafa", "springgreen": "00ff7f", "steelblue": "4682b4", "tan": "d2b48c",
    "thistle": "d8bfd8", "tomato": "ff6347", "turquoise": "40e0d0", "violet": "ee82ee",
    "wheat": "f5deb3", "whitesmoke": "f5f5f5", "yellowgreen": "9acd32",
}
_HEX_RE = re.compile(r"#([0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})")
_FUNC_RE = re.compile(r"rgba?\(\s*([^)]*)\)")


def _channel(value: str) -> float:
    value = value.strip()
    if value.endswith("%"):
        return max(0.0, min(255.0, float(value[:-1]) * 255 / 100))
    return max(0.0, min(255.0, float(value)))


def _alpha(value: str) -> float:
    value = value.strip()
    number = float(value[:-1]) / 100 if value.endswith("%") else float(value)
    return max(0.0, min(1.0, number))


def parse_color(value: str) -> tuple[float, float, float, float] | None:
    """A CSS colour as (r, g, b, alpha), r g b in 0..255; None when it cannot be judged."""
    value = value.strip().lower().removesuffix("!important").strip()
    if value == "transparent":
        return (0.0, 0.0, 0.0, 0.0)
    if value in NAMED:
        value = "#" + NAMED[value]
    if match := _HEX_RE.fullmatch(value):
        digits = match.group(1)
        if len(digits) in (3, 4):
            digits = "".join(d * 2 for d in digits)
        channels = [int(digits[i:i + 2], 16) for i in range(0, len(digits), 2)]
        alpha = channels[3] / 255 if len(channels) == 4 else 1.0
        return (float(channels[0]), float(channels[1]), float(channels[2]), alpha)
    if match := _FUNC_RE.fullmatch(value):
        parts = [p for p in re.split(r"[\s,/]+", match.group(1).strip()) if p]
        try:
            if len(parts) == 3:
                return (_channel(parts[0]), _channel(parts[1]), _channel(parts[2]), 1.0)
            if len(parts) == 4:
                return (_channel(parts[0]), _channel(parts[1]), _channel(parts[2]),
                        _alpha(parts[3]))
        except ValueError:
            return None
    return None


def blend(color: tuple[float, float, float, float], under: RGB) -> RGB:
    """A translucent colour as seen over an opaque one."""
    r, g, b, a = color
    return (r * a + under[0] * (1 - a), g * a + under[1] * (1 - a), b * a + under[2] * (1 - a))


def relative_luminance(rgb: RGB) -> float:
    def linear(channel: float) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(fg: RGB, bg: RGB) -> float:
    lighter, darker = sorted((relative_luminance(fg), relative_luminance(bg)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def to_hex(rgb: RGB) -> str:
    return "#" + "".join(f"{round(c):02x}" for c in rgb)
