"""The group application: the settings → the group level's tables and maps → the group report.

This sits above ``bids_asl.group`` and ``bids_asl.report``, which do not import each other.
"""

from __future__ import annotations

from pathlib import Path

from bids_asl.errors import ExitCode


def group_options(settings):
    """The typed options of the group level, from the frozen settings."""
    from bids_asl.group.normative import NormativeOptions  # noqa: PLC0415
    from bids_asl.group.run import GroupOptions  # noqa: PLC0415

    normative = None
    if settings.reference_group is not None:
        column, value = settings.reference_group
        normative = NormativeOptions(
            column=column, value=value, covariates=tuple(settings.normative_covariates),
            fwhm=settings.normative_fwhm, z_threshold=settings.normative_z_threshold,
            min_volume=settings.normative_min_volume,
            region_atlas=settings.atlases[0] if settings.atlases else None,
            nprocs=settings.nprocs)
    return GroupOptions(output_dir=Path(settings.output_dir), bids_dir=Path(settings.bids_dir),
                        participant_label=tuple(settings.participant_label or ()),
                        session_label=tuple(settings.session_label or ()),
                        exclude=tuple(settings.group_exclude), nprocs=settings.nprocs,
                        normative=normative)


def run_group(settings, progress) -> int:
    from bids_asl.group.run import aggregate  # noqa: PLC0415
    from bids_asl.report.group import GroupReportInputs, write_group_report  # noqa: PLC0415

    options = group_options(settings)
    result = aggregate(options, progress)
    report = write_group_report(GroupReportInputs(
        output_dir=options.output_dir, qc_rows=tuple(result.qc_rows),
        written=dict(result.written), rules=tuple(str(r) for r in result.rules)))
    progress.stage(None, f'group report {report.name} written')
    return int(ExitCode.OK)
