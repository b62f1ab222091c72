"""The participant level: validate the runs, lock the participants, run the workflow, turn
crash files into one line per run, write the reports.  The command line (parsing, path checks,
exit codes of the whole process) is :mod:`bids_asl.cli.run`."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import fields, replace
from pathlib import Path

from bids_asl.errors import (
    BidsAslError,
    ExitCode,
    MetadataError,
    NotImplementedYetError,
)

LOGGER = logging.getLogger('bids_asl')


def prepare_runs(settings, layout_runs, t1w_files=None):
    """Validate each run; returns (run specs, failures as (run, error)).

    ``t1w_files``: subject → its T1w (or None), used when anatomy is on.
    """
    from bids_asl.io.metadata import validate_run  # noqa: PLC0415
    from bids_asl.io.quantparams import Overrides, resolve_constants  # noqa: PLC0415
    from bids_asl.io.tissue import check_tissue_maps, find_tissue_maps  # noqa: PLC0415
    from bids_asl.quant.context import difference_sources  # noqa: PLC0415
    from bids_asl.workflows.base import RunSpec  # noqa: PLC0415

    # the overrides are the settings of the same names
    overrides = Overrides(**{f.name: getattr(settings, f.name) for f in fields(Overrides)})
    specs, failures, t1w_checked = [], [], set()
    for run in layout_runs:
        try:
            if run.problem is not None:
                raise run.problem
            params = validate_run(run.asl_file, run.aslcontext_file, run.metadata,
                                  m0_file=run.m0_file, m0_metadata=run.m0_metadata)
            if not (set(params.volume_types) & {'control', 'deltam'}):
                raise NotImplementedYetError(
                    'runs holding only scanner-computed cbf volumes are not supported yet',
                    path=run.aslcontext_file, field='volume_type')
            n_params = 3 if settings.fit_abv else 2
            n_dm = len(difference_sources(params.volume_types))  # pairs + deltam volumes
            if params.is_multi_delay and n_dm <= n_params:
                raise MetadataError(
                    f'{n_dm} ΔM volumes at {len(params.difference_plds)} delays cannot determine '
                    f'the {n_params} parameters of the kinetic model', path=run.asl_file,
                    field='PostLabelingDelay')
            if settings.m0_estimate is not None:
                params = replace(params, m0_type='Estimate', m0_estimate=settings.m0_estimate)
            constants = resolve_constants(params, overrides)
            tissue = None
            if settings.tissue_maps is not None:
                tissue = find_tissue_maps(settings.tissue_maps, run.prefix, run.entities)
                if tissue is None:
                    LOGGER.warning('%s: no GM/WM/CSF maps in --tissue-maps: tissue QC metrics '
                                   'are n/a', run.asl_file.name)
                else:
                    check_tissue_maps(tissue, run.asl_file)
            if settings.m0_estimate is not None:
                constants['M0Type'] = 'Estimate (--m0-estimate overrides the dataset)'
            anatomy = _anatomy_options(settings, run, t1w_files or {}, t1w_checked)
        except BidsAslError as exc:
            failures.append((run, exc))
            continue
        if constants['BackgroundSuppressionRule'].startswith('BackgroundSuppression is true'):
            LOGGER.warning('%s: BackgroundSuppressionNumberPulses missing: no background-'
                           'suppression correction applied', run.asl_file.name)
        specs.append(RunSpec(prefix=run.prefix, entities=run.entities,
                             asl_file=str(run.asl_file),
                             m0_file=str(run.m0_file) if run.m0_file else None,
                             params=params.to_dict(), constants=constants,
                             multi_delay=params.is_multi_delay,
                             kinetic=_kinetic_options(settings, params.asl_type),
                             t1_map=str(settings.t1_tissue_map)
                             if settings.t1_tissue_map else None,
                             motion_correction=settings.motion_correction, tissue=tissue,
                             outlier_methods=settings.outlier_methods,
                             **anatomy))
    return specs, failures


def _anatomy_options(settings, run, t1w_files: dict, t1w_checked: set) -> dict:
    """RunSpec fields of the anatomy stage (raises a data error for a bad lesion mask)."""
    from bids_asl.io.imagecheck import check_image  # noqa: PLC0415
    from bids_asl.io.tissue import find_lesion_mask, lesion_space  # noqa: PLC0415
    from bids_asl.workflows.anat import AnatomyOptions, AsymmetryOptions  # noqa: PLC0415

    if not settings.anatomy:
        return {}
    t1w = t1w_files.get(run.subject)
    derivs = None
    if settings.anat_derivatives is not None:
        from bids_asl.io.anatderivs import (  # noqa: PLC0415
            check_anat_derivatives,
            find_anat_derivatives,
        )

        derivs = find_anat_derivatives(settings.anat_derivatives, run.subject)
        if derivs is None:
            if ('derivs', run.subject) not in t1w_checked:
                LOGGER.warning('sub-%s: no desc-preproc_T1w, desc-brain_mask and label-{GM,WM,'
                               'CSF}_probseg in --anat-derivatives: %s', run.subject,
                               'the T1w is processed here' if t1w else 'no T1w')
                t1w_checked.add(('derivs', run.subject))
        else:
            t1w = Path(derivs.t1w)
            if t1w not in t1w_checked:
                check_anat_derivatives(derivs)
    if t1w is not None and t1w not in t1w_checked:
        check_image(t1w)  # a broken T1w fails its runs here, with one line naming it
        t1w_checked.add(t1w)  # once per subject, not once per run (it decompresses the T1w)
    lesion_mask = lesion_grid = None
    if settings.lesion_masks is not None:
        lesion = find_lesion_mask(settings.lesion_masks, run.prefix, run.entities)
        if lesion is None:
            LOGGER.warning('%s: no lesion mask in --lesion-masks', run.asl_file.name)
        else:
            lesion_grid, lesion_mask = lesion_space(lesion, run.asl_file, t1w), str(lesion)
    anatomy = AnatomyOptions(
        atlases=tuple(settings.atlases), pvc=settings.pvc,
        asymmetry=AsymmetryOptions(fwhm_mm=settings.asymmetry_fwhm,
                                   threshold=settings.asymmetry_threshold,
                                   min_volume_mm3=settings.asymmetry_min_volume),
        lesion_mask=lesion_mask, lesion_space=lesion_grid)
    return {'t1w_file': str(t1w) if t1w else None, 'anatomy': anatomy,
            'anat_derivatives': derivs}


def _kinetic_options(settings, asl_type: str) -> dict:
    from bids_asl.quant.kinetic import ATT_PRIOR  # noqa: PLC0415

    prior = None if settings.no_att_prior else list(settings.att_prior or ATT_PRIOR[asl_type])
    return {'model': settings.kinetic_model, 'att_prior': prior, 'fit_abv': settings.fit_abv,
            'n_threads': settings.nprocs}


def _save_settings(settings, subjects) -> None:
    from bids_asl.io.images import atomic_write_bytes  # noqa: PLC0415

    text = settings.to_toml().encode()
    for subject in subjects:
        log_dir = settings.output_dir / f'sub-{subject}' / 'log' / settings.run_uuid
        atomic_write_bytes(log_dir / 'bids_asl.toml', text)


#: Exceptions named in a crash file that are the user's to fix: their exit code.
_KNOWN_ERRORS = {'MetadataError': ExitCode.DATAERR, 'OutputError': ExitCode.CANTCREAT}
#: errno values of OSError that mean the output or work folder cannot be written.
_WRITE_ERRNOS = ('[Errno 28]', '[Errno 122]', '[Errno 30]', '[Errno 13]')


def _crash_code(last: str) -> ExitCode:
    known = next((c for name, c in _KNOWN_ERRORS.items() if name in last), None)
    if known is not None:
        return known
    return ExitCode.CANTCREAT if any(e in last for e in _WRITE_ERRNOS) else ExitCode.SOFTWARE


def _crash_summaries(crash_dir: Path, specs) -> list[tuple[str, str, int]]:
    """(asl file, last exception line, exit code) for each nipype crash file."""
    from bids_asl.workflows.base import safe_name  # noqa: PLC0415

    out = []
    for crash in sorted(crash_dir.glob('crash-*.txt')):
        text = crash.read_text(errors='replace')
        node = text.splitlines()[0] if text else ''
        lines = [ln for ln in text.splitlines() if ln.strip()]
        last = next((ln for ln in reversed(lines) if 'Error' in ln or 'Exception' in ln),
                    lines[-1] if lines else 'unknown error')
        owner = next((s.asl_file for s in specs if f'asl_{safe_name(s.prefix)}_wf' in node
                      or f'ds_{safe_name(s.prefix)}' in node
                      or f'ds_anat_{safe_name(s.prefix)}' in node), None)
        if owner is None:  # the subject's T1w workflow, or the atlas preparation
            owner = next((s.t1w_file for s in specs if s.t1w_file and (
                f't1w_{safe_name(s.entities["subject"])}_wf' in node
                or f'ds_t1w_{safe_name(s.entities["subject"])}' in node)),
                'atlas preparation' if 'atlas_wf' in node else 'unknown run')
        code = _crash_code(last)
        known = any(name in last for name in _KNOWN_ERRORS)
        out.append((owner, last.split(': ', 1)[-1].strip() if known else last.strip(), code))
    return out


def _run_workflow(settings, specs, progress) -> list[tuple[str, str, int]]:
    os.environ.setdefault('NIPYPE_NO_ET', '1')  # no version check over the network
    from nipype import config as nipype_config  # noqa: PLC0415
    from nipype import logging as nipype_logging  # noqa: PLC0415

    from bids_asl.workflows.base import init_bids_asl_wf, safe_name  # noqa: PLC0415

    crash_dir = settings.output_dir / 'logs' / f'crash-{settings.run_uuid}'
    nipype_config.update_config({
        'execution': {'crashdump_dir': str(crash_dir), 'crashfile_format': 'txt',
                      'stop_on_first_crash': False, 'remove_unnecessary_outputs': False,
                      'check_version': False, 'poll_sleep_duration': 0.02,
                      # no index.html/graph*.json at the root of the work dir: processes of
                      # other participants share that folder
                      'create_report': False},
        # Crashes are summarised in one line per run by us; nipype's own traceback is shown
        # only with -v (ERROR) or -vv (INFO), and is always in the crash file.
        'logging': {'workflow_level': ('CRITICAL', 'ERROR', 'INFO')[min(settings.verbose, 2)],
                    'interface_level': 'INFO' if settings.verbose > 1 else 'WARNING',
                    'utils_level': 'WARNING', 'log_to_file': False},
        'monitoring': {'enabled': False},
    })
    nipype_logging.update_logging(nipype_config)
    # nipype's console handler keeps the stdout of its import time: point it at the current one
    # (like _setup_logging) so that repeated in-process runs never write to a closed stream.
    for handler in logging.getLogger('nipype').handlers:
        if type(handler) is logging.StreamHandler:
            handler.stream = sys.stdout  # not setStream(): it flushes the old stream
    workflow = init_bids_asl_wf(runs=specs, output_dir=str(settings.output_dir),
                                bids_dir=str(settings.bids_dir),
                                base_dir=str(settings.effective_work_dir))
    plugin = ('MultiProc', {'n_procs': settings.nprocs, 'raise_insufficient': False}) \
        if settings.nprocs > 1 else ('Linear', {})
    progress.total = len(workflow._create_flat_graph().nodes())  # noqa: SLF001
    progress.runs = {safe_name(s.prefix): s.prefix for s in specs}
    progress.subjects = {safe_name(s.entities['subject']): s.entities['subject'] for s in specs}
    plugin[1]['status_callback'] = progress.callback
    try:
        workflow.run(plugin=plugin[0], plugin_args=plugin[1])
    except RuntimeError:
        progress.clear()
        summaries = _crash_summaries(crash_dir, specs) if crash_dir.exists() else []
        return summaries or [('workflow', 'nipype reported a failure without a crash file',
                               ExitCode.SOFTWARE)]
    progress.clear()
    return []


def _write_reports(settings, subjects, errors, progress) -> list[int]:
    """One HTML report per subject; a failure costs the report, never the derivatives."""
    from bids_asl.report.subject import write_subject_report  # noqa: PLC0415

    codes = []
    for subject in subjects:
        try:
            path = write_subject_report(settings.output_dir, subject, errors.get(subject, ()))
        except Exception as exc:  # noqa: BLE001 - the derivatives are already written
            LOGGER.debug('report of sub-%s failed', subject, exc_info=True)
            print(f'bids-asl: error: {settings.output_dir / f"sub-{subject}.html"}: report not '
                  f'written: {exc.__class__.__name__}: {exc}', file=sys.stderr)
            codes.append(ExitCode.CANTCREAT if isinstance(exc, OSError) else ExitCode.SOFTWARE)
            continue
        progress.stage(subject, f'report {path.name} written')
    return codes


def _report_warnings(settings, specs) -> list[int]:
    """Repeat the quantification warnings recorded in the CBF sidecars on the console; a run
    whose anatomy was incomplete (``AnatomyErrors``) makes the exit code PARTIAL."""
    import json  # noqa: PLC0415

    from bids_asl.io.naming import path_for, sidecar_of  # noqa: PLC0415

    codes = []
    for spec in specs:
        sidecar = sidecar_of(path_for(settings.output_dir, 'cbf', spec.prefix))
        if sidecar.exists():
            meta = json.loads(sidecar.read_text())
            for warning in meta.get('Warnings', []):
                LOGGER.warning('%s: %s', sidecar.name, warning)
            if meta.get('AnatomyErrors'):
                codes.append(ExitCode.PARTIAL)
    return codes


def _compare_sessions(settings, subjects) -> list[int]:
    """The session comparison, before the reports (they show it); like a report, a failure
    here costs one line and the exit code, never the reports or the derivatives."""
    from bids_asl.clinical.sessions import compare_sessions  # noqa: PLC0415

    a, b = settings.compare_sessions
    try:
        files = compare_sessions(settings.output_dir, a, b,
                                 normalise=settings.compare_normalise,
                                 z_threshold=settings.compare_z_threshold,
                                 min_volume_mm3=settings.asymmetry_min_volume,
                                 subjects=set(subjects))
    except BidsAslError as exc:
        print(f'bids-asl: error: {exc}', file=sys.stderr)
        return [int(exc.exit_code)]
    except Exception as exc:  # noqa: BLE001 - the run's derivatives are already written
        LOGGER.debug('session comparison failed', exc_info=True)
        print(f'bids-asl: error: session comparison ses-{a} minus ses-{b} not written: '
              f'{exc.__class__.__name__}: {exc}', file=sys.stderr)
        return [int(ExitCode.CANTCREAT if isinstance(exc, OSError) else ExitCode.SOFTWARE)]
    LOGGER.info('session comparison ses-%s minus ses-%s: %d file(s)', a, b, len(files))
    return []


def _lock_participants(settings, specs):
    """Lock each participant in the output and work dirs; (locks, specs kept, errors).

    A participant whose output folder resolves elsewhere (a planted symlink) is refused too.
    """
    from bids_asl.io.derivatives import check_inside  # noqa: PLC0415
    from bids_asl.io.images import remove_stale_temps  # noqa: PLC0415
    from bids_asl.io.locks import ParticipantLock  # noqa: PLC0415

    folders = list(dict.fromkeys(p.resolve() for p in (settings.output_dir,
                                                       settings.effective_work_dir)))
    locks, errors, busy = [], [], set()
    for subject in sorted({s.entities['subject'] for s in specs}):
        taken = []
        try:
            check_inside(settings.output_dir, settings.output_dir / f'sub-{subject}' / 'log')
            for folder in folders:
                taken.append(ParticipantLock(folder, subject).acquire())
        except BidsAslError as exc:
            for lock in taken:
                lock.release()
            errors.append(exc)
            busy.add(subject)
            continue
        locks += taken
        # ours alone now: temporary files there were left by a killed run
        remove_stale_temps(settings.output_dir / f'sub-{subject}')
    # shared files take milliseconds to write: a temporary one this old is a killed run's
    remove_stale_temps(settings.output_dir, older_than=600, recursive=False)
    return locks, [s for s in specs if s.entities['subject'] not in busy], errors


def run_participant(settings, progress) -> int:
    from bids_asl.io.derivatives import init_output_dataset  # noqa: PLC0415
    from bids_asl.io.layout import collect_asl_runs, load_layout  # noqa: PLC0415

    if not settings.skip_bids_validation:
        from bids_asl.io.validator import check_dataset  # noqa: PLC0415

        LOGGER.info('validating %s with bids-validator-deno', settings.bids_dir)
        check_dataset(settings.bids_dir)
    layout = load_layout(settings.bids_dir)
    runs = collect_asl_runs(layout, settings.participant_label or None,
                            settings.session_label or None)
    t1w_files = {}
    if settings.anatomy:
        from bids_asl.io.layout import find_t1w  # noqa: PLC0415

        for subject in sorted({r.subject for r in runs}):
            t1w_files[subject] = find_t1w(layout, subject)
            if t1w_files[subject] is None and not (
                    settings.anat_derivatives is not None
                    and (settings.anat_derivatives / f'sub-{subject}').is_dir()):
                LOGGER.warning('sub-%s: no T1w: the ASL reference is registered to the '
                               'template directly (flagged in the outputs)', subject)
    specs, failures = prepare_runs(settings, runs, t1w_files)
    subjects = sorted({r.entities['subject'] for r in runs})
    errors: dict[str, list] = {}  # subject -> (run, one-line message) for the reports
    for run, exc in failures:
        print(f'bids-asl: error: {exc}', file=sys.stderr)
        errors.setdefault(run.entities['subject'], []).append((Path(run.asl_file).name, exc))
    codes = [exc.exit_code for _, exc in failures]
    wanted = {s.entities['subject'] for s in specs}
    locks, specs, lock_errors = _lock_participants(settings, specs) if specs else ([], [], [])
    for exc in lock_errors:
        print(f'bids-asl: error: {exc}', file=sys.stderr)
        codes.append(exc.exit_code)
    locked = {s.entities['subject'] for s in specs}
    busy = wanted - locked  # another process holds them: their report is its business
    compare_codes = []
    crashed = set()
    try:
        if specs:
            init_output_dataset(settings.output_dir, settings.bids_dir, settings.version)
            _save_settings(settings, sorted({s.entities['subject'] for s in specs}))
            progress.stage(None, f'quantifying {len(specs)} run(s) of {len(locked)} '
                                 'subject(s)')
            run_files = {s.asl_file: (s.asl_file, s.m0_file) for s in specs}
            owners = {s.asl_file: s.entities['subject'] for s in specs}
            for owner, message, code in _run_workflow(settings, specs, progress):
                if owner in crashed and owner != 'unknown run':
                    continue  # one line per run: the first node that failed
                crashed.add(owner)
                # A known error already names its file (the ASL series, its M0, an output).
                names_file = code != ExitCode.SOFTWARE and (
                    any(f and f in message for f in run_files.get(owner, ()))
                    or any(str(d) in message for d in (settings.output_dir,
                                                       settings.effective_work_dir)))
                print(f'bids-asl: error: {message}' if names_file
                      else f'bids-asl: error: {owner}: {message}', file=sys.stderr)
                codes.append(code)
                for subject in [owners[owner]] if owner in owners else sorted(locked):
                    errors.setdefault(subject, []).append((Path(owner).name, message))
            codes += _report_warnings(settings, specs)
            if settings.compare_sessions is not None:  # while the participants are locked
                compare_codes = _compare_sessions(settings, locked)
        # reports while the participants are still ours; a busy participant's report is left
        # to the process that holds it
        codes += _write_reports(settings, [s for s in subjects if s not in busy], errors,
                                progress)
    finally:
        for lock in locks:
            lock.release()
    n_ok = len(specs) - len(crashed & {s.asl_file for s in specs}) if specs else 0
    codes += compare_codes
    LOGGER.info('%d of %d run(s) written to %s', n_ok, len(runs), settings.output_dir)
    return int(max(codes)) if codes else int(ExitCode.OK)
