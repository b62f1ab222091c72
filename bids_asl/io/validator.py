"""Run the BIDS validator (``bids-validator-deno`` from PyPI: offline, no network)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bids_asl.errors import InputMissingError, MetadataError


def validator_executable() -> str:
    local = Path(sys.executable).parent / 'bids-validator-deno'
    if local.exists():
        return str(local)
    found = shutil.which('bids-validator-deno')
    if not found:
        raise InputMissingError('bids-validator-deno is not installed; reinstall bids-asl or '
                                'pass --skip-bids-validation', field='bids-validator-deno')
    return found


def run_validator(dataset, *, timeout: float = 600, config: dict | None = None) -> dict:
    """The validator's JSON report for ``dataset``."""
    with tempfile.TemporaryDirectory(prefix='bids-asl-validator-') as tmp:
        cmd = [validator_executable(), str(dataset), '--json']
        if config is not None:
            cfg = Path(tmp) / 'config.json'
            cfg.write_text(json.dumps(config))
            cmd += ['--config', str(cfg)]
        env = {**os.environ, 'DENO_DIR': tmp, 'DENO_NO_UPDATE_CHECK': '1', 'NO_COLOR': '1'}
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                              check=False)
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise MetadataError('the BIDS validator could not read the dataset: '
                            + (detail[-1] if detail else f'exit {proc.returncode}'),
                            path=dataset, field='bids-validator') from None


def validation_errors(report: dict) -> list[dict]:
    return [i for i in report['issues']['issues'] if i.get('severity') == 'error']


def check_dataset(dataset) -> None:
    """Raise :class:`MetadataError` naming the first invalid file and rule."""
    errors = validation_errors(run_validator(dataset))
    if errors:
        first = errors[0]
        location = first.get('location', '')
        loc = (Path(dataset) / location.lstrip('/')) if location else Path(dataset)
        message = ' '.join((first.get('issueMessage') or '').split())[:300]
        raise MetadataError(
            f'BIDS validator: {first.get("code")} {message}'.strip()
            + (f' ({len(errors) - 1} more errors; --skip-bids-validation to proceed)'
               if len(errors) > 1 else ' (--skip-bids-validation to proceed)'),
            path=loc, field=first.get('affects') or first.get('code'))
