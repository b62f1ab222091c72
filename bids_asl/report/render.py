"""jinja2 environment (autoescape on, templates shipped as package data) and shared helpers."""

from __future__ import annotations

import json
import platform
from importlib import metadata

from bids_asl import __version__

PACKAGES = ('bids-asl', 'numpy', 'scipy', 'nibabel', 'nipype', 'pybids', 'antspyx',
            'matplotlib', 'jinja2')


def environment():
    import jinja2  # noqa: PLC0415

    env = jinja2.Environment(loader=jinja2.PackageLoader('bids_asl.report', 'templates'),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters['num'] = format_number
    return env


def render(template: str, **context) -> str:
    return environment().get_template(template).render(**context)


def inline_script(name: str) -> dict:
    """A shipped script for inlining, and the CSP source that allows exactly that script
    (its SHA-256), so that no other inline script could run even if one slipped in."""
    import base64  # noqa: PLC0415
    import hashlib  # noqa: PLC0415

    from markupsafe import Markup  # noqa: PLC0415 - a jinja2 dependency

    env = environment()
    text = env.loader.get_source(env, name)[0]
    digest = base64.b64encode(hashlib.sha256(text.encode('utf-8')).digest()).decode('ascii')
    return {'script': Markup(text), 'script_csp': f"'sha256-{digest}'"}


def format_number(value, digits: int = 4) -> str:
    """Table cell text: numbers to ``digits`` significant figures (whole numbers when they
    have more digits than that, never an exponent below 1e15), n/a kept, text as is."""
    if value is None or value == '':
        return 'n/a'
    if isinstance(value, bool):
        return str(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if number != number:
        return 'n/a'
    if isinstance(value, int) or (isinstance(value, str) and value.lstrip('-').isdigit()):
        return str(int(number))
    if abs(number) >= 10 ** digits and abs(number) < 1e15:
        return f'{number:.0f}'  # 42620, not 4.262e+04 (volumes in mm³, voxel counts)
    return f'{number:.{digits}g}'


def flatten(data: dict, prefix: str = '') -> list[tuple[str, str]]:
    """Nested sidecar → (dotted key, text) rows; lists as compact JSON."""
    rows = []
    for key in sorted(data):
        value = data[key]
        name = f'{prefix}{key}'
        if isinstance(value, dict):
            rows.extend(flatten(value, name + '.'))
        elif isinstance(value, list):
            rows.append((name, json.dumps(value, separators=(', ', ': '), ensure_ascii=False)))
        else:
            rows.append((name, format_number(value, 6) if isinstance(value, float)
                         else str(value)))
    return rows


def software_versions() -> list[tuple[str, str]]:
    rows = [('python', platform.python_version())]
    for name in PACKAGES:
        if name == 'bids-asl':
            rows.append((name, __version__))
            continue
        try:
            rows.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            rows.append((name, 'not installed'))
    return rows
