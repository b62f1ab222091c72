"""``bids-asl`` entry point: parse, check, discover, validate, run, report exit code."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

from bids_asl.errors import (
    BidsAslError,
    ExitCode,
    OutputError,
    UsageError,
)

LOGGER = logging.getLogger('bids_asl')


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter('bids-asl: %(levelname)s: %(message)s'))
    LOGGER.handlers[:] = [handler]
    LOGGER.setLevel(logging.INFO if verbose == 0 else level)
    LOGGER.propagate = False


def _is_within(path: Path, parent: Path) -> bool:
    try:
        path.resolve().relative_to(parent.resolve())
    except ValueError:
        return False
    return True


def check_paths(settings) -> None:
    """Refuse unusable input/output locations before any work is done."""
    from bids_asl.errors import InputMissingError  # noqa: PLC0415

    bids, out = settings.bids_dir, settings.output_dir
    if not bids.is_dir():
        raise InputMissingError('BIDS directory does not exist', path=bids, field='bids_dir')
    if not (bids / 'dataset_description.json').is_file():
        raise InputMissingError('not a BIDS dataset (no dataset_description.json)', path=bids,
                                field='bids_dir')
    # BIDS reserves BIDS_DIR/derivatives/ for derivatives: that is the one place inside it
    # where outputs may go (pybids and the validator skip it).
    allowed = bids / 'derivatives'
    for name, path in (('output_dir', out), ('--work-dir', settings.effective_work_dir)):
        if _is_within(path, bids) and not (_is_within(path, allowed) and path.resolve()
                                           != allowed.resolve()):
            raise UsageError('must not be the BIDS directory or inside it (except under '
                             'BIDS_DIR/derivatives/<name>)', path=path, field=name)
    if settings.tissue_maps is not None and not settings.tissue_maps.is_dir():
        raise InputMissingError('folder does not exist', path=settings.tissue_maps,
                                field='--tissue-maps')
    if settings.anatomy:
        from bids_asl.io.templates import atlas_files  # noqa: PLC0415

        for atlas in settings.atlases:
            atlas_files(atlas)  # unknown name: usage error; missing package data: exit 66
    if settings.compare_sessions is not None:
        if not settings.anatomy:
            raise UsageError('needs the anatomy stage (drop --no-anatomy)',
                             field='--compare-sessions')
        if settings.compare_sessions[0] == settings.compare_sessions[1]:
            raise UsageError('the two sessions must differ', field='--compare-sessions')
    if settings.anat_derivatives is not None:
        if not settings.anatomy:
            raise UsageError('needs the anatomy stage (drop --no-anatomy)',
                             field='--anat-derivatives')
        if not settings.anat_derivatives.is_dir():
            raise InputMissingError('folder does not exist', path=settings.anat_derivatives,
                                    field='--anat-derivatives')
    if settings.lesion_masks is not None:
        if not settings.anatomy:
            raise UsageError('needs the anatomy stage (drop --no-anatomy)', field='--lesion-masks')
        if not settings.lesion_masks.is_dir():
            raise InputMissingError('folder does not exist', path=settings.lesion_masks,
                                    field='--lesion-masks')
    if settings.normative_covariates and settings.reference_group is None:
        raise UsageError('needs --reference-group', field='--normative-covariates')
    if settings.t1_tissue_map is not None and not settings.t1_tissue_map.is_file():
        raise InputMissingError('file does not exist', path=settings.t1_tissue_map,
                                field='--t1-tissue-map')
    if settings.analysis_level == 'group':
        # the group level reads the participants' outputs and writes OUTPUT_DIR/group only
        if not out.is_dir():
            raise InputMissingError('no participant outputs: the folder does not exist (run '
                                    'the participant level first)', path=out,
                                    field='output_dir')
        writable = (out,)
    else:
        writable = (out, settings.effective_work_dir)
    for path in writable:
        try:
            path.mkdir(parents=True, exist_ok=True)
            # a unique name: array tasks on several hosts may share PIDs and this folder
            with tempfile.NamedTemporaryFile(dir=path, prefix='.bids-asl-write-test-'):
                pass
        except OSError as exc:
            raise OutputError(f'cannot write ({exc.strerror})', path=path,
                              field='output_dir') from None


@contextlib.contextmanager
def _private_temp(settings):
    """Temporary files (ours, ANTs', matplotlib's caches) go to the work dir, not to $TMPDIR
    or $HOME: a run writes nowhere but its output and work dirs.  Restored afterwards."""
    tmp = settings.effective_work_dir / 'tmp' / settings.run_uuid
    saved = {k: os.environ.get(k) for k in ('TMPDIR', 'MPLCONFIGDIR')}
    try:
        try:
            tmp.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f'cannot write ({exc.strerror})', path=tmp,
                              field='--work-dir') from None
        os.environ['TMPDIR'] = str(tmp)
        os.environ['MPLCONFIGDIR'] = saved['MPLCONFIGDIR'] or str(
            settings.effective_work_dir / 'matplotlib')
        tempfile.tempdir = None  # re-read TMPDIR
        yield tmp
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        tempfile.tempdir = None
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv=None) -> int:
    from bids_asl.cli.parser import parse_args  # noqa: PLC0415

    settings = parse_args(argv)  # exits 64 on usage errors, 0 for --help/--version
    _setup_logging(settings.verbose)
    try:
        check_paths(settings)
        from bids_asl.cli.progress import Progress  # noqa: PLC0415

        progress = Progress()
        if settings.analysis_level == 'group':
            from bids_asl.cli.group import run_group  # noqa: PLC0415

            return run_group(settings, progress)
        from bids_asl.cli.participant import run_participant  # noqa: PLC0415

        with _private_temp(settings):
            return run_participant(settings, progress)
    except BidsAslError as exc:
        print(f'bids-asl: error: {exc}', file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print('bids-asl: interrupted', file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - last resort: one line, details in the log
        LOGGER.debug('internal error', exc_info=True)
        print(f'bids-asl: internal error: {exc.__class__.__name__}: {exc} (rerun with -vv for '
              'the traceback; please report it)', file=sys.stderr)
        if settings.verbose > 1:
            import traceback  # noqa: PLC0415

            traceback.print_exc()
        return int(ExitCode.SOFTWARE)


if __name__ == '__main__':
    raise SystemExit(main())
