"""Argument parser (standard library only: ``--help`` and ``--version`` stay fast)."""

from __future__ import annotations

import argparse
import os
import uuid
from pathlib import Path

from bids_asl import __version__
from bids_asl.config import Settings
from bids_asl.errors import ExitCode
from bids_asl.io.qctable import RULE_METRICS
from bids_asl.qcrules import parse_rule

EPILOG = """exit codes:
  0   success
  3   partial: every run has its CBF, but an anatomy step failed for some run (see its sidecar)
  64  usage error (bad option, output dir inside the BIDS dir)
  65  invalid data or metadata (the message names the file and the field)
  66  input missing (BIDS dir, participant, ASL runs; group: no participant outputs)
  69  not implemented yet (runs holding only scanner-computed CBF volumes)
  70  internal error (a bug: please report it with the log)
  73  cannot write the output or work directory (read-only, full, permission; or a report)
  75  another bids-asl process is working on the participant (try again later)
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse exits 2; BIDS-Apps users get sysexits' EX_USAGE
        self.print_usage()
        self.exit(ExitCode.USAGE, f'{self.prog}: error: {message}\n')


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not a number') from None
    if not value > 0 or value != value or value == float('inf'):
        raise argparse.ArgumentTypeError(f'{text!r} must be a finite number > 0')
    return value


def _non_negative_float(text: str) -> float:
    if text.strip() in ('0', '0.0'):
        return 0.0
    return _positive_float(text)


def _fraction(text: str) -> float:
    value = _positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f'{text!r} must be in (0, 1]')
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not a whole number') from None
    if value < 1:
        raise argparse.ArgumentTypeError(f'{text!r} must be >= 1')
    return value


def _rule(text: str) -> str:
    try:
        return str(parse_rule(text, RULE_METRICS))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _nonnegative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not a number') from None
    if not value >= 0 or value == float('inf'):
        raise argparse.ArgumentTypeError(f'{text!r} must be a finite number >= 0')
    return value


def _label(prefix: str):
    def parse(text: str) -> str:
        label = text[len(prefix):] if text.startswith(prefix) else text
        if not label or not label.isalnum():
            raise argparse.ArgumentTypeError(f'{text!r} is not a valid BIDS label')
        return label

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog='bids-asl',
        description='Arterial spin labelling MRI to calibrated CBF maps (a BIDS App).',
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('bids_dir', type=Path, help='root of the BIDS dataset')
    parser.add_argument('output_dir', type=Path, help='where the derivative dataset is written')
    parser.add_argument('analysis_level', choices=['participant', 'group'],
                        help='participant: one or more subjects; group: aggregate them')
    parser.add_argument('--version', action='version', version=f'bids-asl {__version__}')
    sel = parser.add_argument_group('selection')
    sel.add_argument('--participant-label', '--participant_label', nargs='+', default=[],
                     type=_label('sub-'), metavar='LABEL',
                     help='subjects to process, with or without "sub-" (default: all)')
    sel.add_argument('--session-label', '--session_label', nargs='+', default=[],
                     type=_label('ses-'), metavar='LABEL',
                     help='sessions to process, with or without "ses-" (default: all)')
    sel.add_argument('--skip-bids-validation', action='store_true',
                     help='do not run the BIDS validator on the input dataset')
    run = parser.add_argument_group('execution')
    run.add_argument('-w', '--work-dir', type=Path,
                     help='intermediate results; an identical rerun reuses them '
                          '(default: OUTPUT_DIR/.work)')
    run.add_argument('--nprocs', '--n-cpus', type=_positive_int, default=1,
                     help='processes to use (default: 1)')
    run.add_argument('-v', '--verbose', action='count', default=0,
                     help='more log output (repeat for more)')
    phys = parser.add_argument_group(
        'physical constants (override the sidecar and the literature defaults)')
    phys.add_argument('--t1-blood', type=_positive_float, metavar='SECONDS',
                      help='arterial blood T1 (default: by field strength; docs/methods.md)')
    phys.add_argument('--hematocrit', type=_fraction, metavar='FRACTION',
                      help='derive blood T1 from hematocrit (3 T only, Lu et al. 2004)')
    phys.add_argument('--partition-coefficient', '--lambda', type=_fraction,
                      dest='partition_coefficient', metavar='ML_PER_G',
                      help='blood-brain partition coefficient (default 0.9)')
    phys.add_argument('--labeling-efficiency', type=_fraction, metavar='ALPHA',
                      help='labelling efficiency before background suppression (default: '
                           'LabelingEfficiency, else 0.85 PCASL, 0.68 CASL, 0.98 PASL)')
    phys.add_argument('--bs-efficiency-per-pulse', type=_fraction, metavar='FRACTION',
                      help='efficiency kept per background-suppression pulse (default 0.95)')
    phys.add_argument('--m0-scale', type=_positive_float, default=1.0, metavar='FACTOR',
                      help='multiply M0 by this factor (vendor scaling; default 1)')
    phys.add_argument('--t1-tissue', type=_positive_float, metavar='SECONDS',
                      help='tissue T1 for the short-TR M0 correction (default 1.3)')
    phys.add_argument('--allow-control-m0', action='store_true',
                      help='with M0Type Absent and background suppression, use the mean '
                           'control image as M0 anyway (CBF will be overestimated)')
    phys.add_argument('--m0-estimate', type=_positive_float, metavar='VALUE',
                      help='calibrate every run with this single M0 value (scanner units of '
                           'the ASL images) instead of its M0 images, e.g. when M0 is absent')
    qc = parser.add_argument_group('motion and outliers')
    qc.add_argument('--no-motion-correction', action='store_true',
                    help='skip rigid realignment of the ASL series (ANTs; on by default)')
    qc.add_argument('--outlier-methods', nargs='+', choices=['score', 'scrub', 'none'],
                    default=['score', 'scrub'], metavar='METHOD',
                    help='robust CBF estimates written besides the plain mean, single-delay '
                         'runs: score, scrub (default both) or none')
    qc.add_argument('--tissue-maps', type=Path, metavar='DIR',
                    help='folder with GM/WM/CSF probability maps on each run\'s ASL grid, '
                         'named sub-<label>[_ses-<label>][...]_label-{GM,WM,CSF}_probseg.nii.gz'
                         ', for the tissue QC metrics and tissue-aware SCORE/SCRUB')
    anat = parser.add_argument_group('anatomy and template space')
    anat.add_argument('--no-anatomy', action='store_true',
                      help='skip the T1w segmentation, the registrations, template-space maps '
                           'and regional tables (ASL-space outputs only)')
    anat.add_argument('--atlases', nargs='+', default=['AAL', 'HarvardOxford'],
                      metavar='NAME',
                      help='atlases for the regional tables (default: AAL HarvardOxford; '
                           'none for no table). Available: AAL, HarvardOxford, '
                           'DesikanKilliany, Destrieux, Juelich, AICHA, MarsAtlas, '
                           'Neuromorphometrics, TalairachBA, TalairachGyrus; licences in '
                           'docs/anatomy.md')
    anat.add_argument('--pvc', action='store_true',
                      help='also write partial-volume corrected GM and WM CBF (linear '
                           'regression, Asllani 2008)')
    anat.add_argument('--asymmetry-threshold', type=_fraction, default=0.15, metavar='AI',
                      help='report left/right asymmetry clusters where |AI| >= this '
                           '(AI = 2(L-R)/(L+R); default 0.15)')
    anat.add_argument('--asymmetry-fwhm', type=_non_negative_float, default=8.0, metavar='MM',
                      help='Gaussian smoothing of CBF before the asymmetry map (default 8; 0: '
                           'none)')
    anat.add_argument('--asymmetry-min-volume', type=_non_negative_float, default=400.0,
                      metavar='MM3', help='smallest asymmetry cluster reported (default 400)')
    anat.add_argument('--lesion-masks', type=Path, metavar='DIR',
                      help='folder with lesion masks (<run stem> or sub-<label>[_ses-<label>] '
                           '..._label-lesion_{mask,roi}.nii[.gz]) on the ASL or the T1w grid: '
                           'CBF per lesion, perilesional rings and NAWM by distance')
    anat.add_argument('--anat-derivatives', type=Path, metavar='DIR',
                      help='fMRIPrep/sMRIPrep outputs to use instead of processing the T1w: '
                           'desc-preproc_T1w, desc-brain_mask, label-{GM,WM,CSF}_probseg and '
                           'the from-T1w_to-MNI152NLin2009aSym/cAsym transforms (cAsym: also '
                           'an output space); see docs/anatomy.md')
    comp = parser.add_argument_group('session comparison (subjects with two sessions)')
    comp.add_argument('--compare-sessions', nargs=2, type=_label('ses-'), metavar=('A', 'B'),
                      help='write A - B CBF difference, percent-change and z maps (T1w and '
                           'template space), clusters and regional change tables for each '
                           'subject with runs in both sessions')
    comp.add_argument('--compare-normalise', action='store_true',
                      help='scale session A to the whole-brain mean of B first (global '
                           'normalisation: focal changes against the global level)')
    comp.add_argument('--compare-z-threshold', type=_positive_float, default=3.0, metavar='Z',
                      help='|z| of the difference clusters (default 3; z uses each run\'s own '
                           'voxelwise standard error)')
    kin = parser.add_argument_group('multi-delay kinetic model (runs with several delays)')
    kin.add_argument('--kinetic-model', choices=['tissue', 'blood'], default='tissue',
                     help="tissue: T1 after arrival 1/T1' = 1/T1tissue + f/lambda (Buxton; "
                          'default, as BASIL); blood: blood T1 throughout (white paper)')
    kin.add_argument('--t1-tissue-map', type=Path, metavar='NIFTI',
                     help='voxelwise tissue T1 (s) on the ASL grid for the tissue model')
    kin.add_argument('--att-prior', type=_positive_float, nargs=2, metavar=('MEAN', 'SD'),
                     help='Gaussian prior on ATT in s (default 1.3 1.0 for (P)CASL, 0.7 1.0 '
                          'for PASL, as BASIL)')
    kin.add_argument('--no-att-prior', action='store_true',
                     help='plain least squares (no ATT prior)')
    kin.add_argument('--fit-abv', action='store_true',
                     help='also fit an arterial (macrovascular) component')
    grp = parser.add_argument_group(
        'group level (QC-based exclusion from the group maps; recorded in the group sidecars)')
    grp.add_argument('--group-exclude', nargs='+', type=_rule, default=[], metavar='RULE',
                     help='exclude a run when METRIC<VALUE (also <=, >, >=) holds for a column '
                          'of its QC table, e.g. "mean_fd>0.5" "qei<0.6"; n/a never excludes')
    grp.add_argument('--exclude-fd-above', type=_nonnegative_float, metavar='MM',
                     help='shorthand for --group-exclude "mean_fd>MM"')
    grp.add_argument('--exclude-qei-below', type=_fraction, metavar='QEI',
                     help='shorthand for --group-exclude "qei<QEI"')
    norm = parser.add_argument_group(
        'normative z-maps (group level: each participant against a reference group)')
    norm.add_argument('--reference-group', type=_column_value, metavar='COLUMN=VALUE',
                      help='participants.tsv rows with COLUMN equal to VALUE are the reference '
                           '(e.g. group=control): voxelwise and regional z of every '
                           'participant against them, controls leave-one-out')
    norm.add_argument('--normative-covariates', nargs='+', default=[], metavar='COLUMN',
                      help='participants.tsv columns in the reference linear model (e.g. age '
                           'sex; numbers as they are, text as indicator columns)')
    norm.add_argument('--normative-fwhm', type=_nonnegative_float, default=8.0, metavar='MM',
                      help='smoothing within the brain before the voxelwise z (default 8; 0: '
                           'none)')
    norm.add_argument('--normative-z-threshold', type=_positive_float, default=3.0,
                      metavar='Z', help='|z| of the flagged clusters (default 3)')
    norm.add_argument('--normative-min-volume', type=_nonnegative_float, default=400.0,
                      metavar='MM3', help='smallest flagged cluster in mm3 (default 400)')
    return parser


def _column_value(text: str) -> tuple[str, str]:
    column, sep, value = text.partition('=')
    if not sep or not column.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f'{text!r} is not COLUMN=VALUE (e.g. group=control)')
    return column.strip(), value.strip()


def parse_args(argv=None) -> Settings:
    args = build_parser().parse_args(argv)
    bids_dir = Path(os.path.abspath(args.bids_dir))
    output_dir = Path(os.path.abspath(args.output_dir))
    return Settings(
        bids_dir=bids_dir, output_dir=output_dir, analysis_level=args.analysis_level,
        participant_label=tuple(dict.fromkeys(args.participant_label)),
        session_label=tuple(dict.fromkeys(args.session_label)),
        work_dir=Path(os.path.abspath(args.work_dir)) if args.work_dir else None,
        nprocs=args.nprocs, skip_bids_validation=args.skip_bids_validation,
        verbose=args.verbose, t1_blood=args.t1_blood, hematocrit=args.hematocrit,
        partition_coefficient=args.partition_coefficient,
        labeling_efficiency=args.labeling_efficiency, m0_scale=args.m0_scale,
        t1_tissue=args.t1_tissue, bs_efficiency_per_pulse=args.bs_efficiency_per_pulse,
        allow_control_m0=args.allow_control_m0, m0_estimate=args.m0_estimate,
        kinetic_model=args.kinetic_model,
        att_prior=tuple(args.att_prior) if args.att_prior else None,
        no_att_prior=args.no_att_prior, fit_abv=args.fit_abv,
        t1_tissue_map=Path(os.path.abspath(args.t1_tissue_map)) if args.t1_tissue_map else None,
        motion_correction=not args.no_motion_correction,
        tissue_maps=Path(os.path.abspath(args.tissue_maps)) if args.tissue_maps else None,
        outlier_methods=tuple(m for m in dict.fromkeys(args.outlier_methods) if m != 'none'),
        anatomy=not args.no_anatomy, pvc=args.pvc, asymmetry_fwhm=args.asymmetry_fwhm,
        asymmetry_threshold=args.asymmetry_threshold,
        asymmetry_min_volume=args.asymmetry_min_volume,
        lesion_masks=Path(os.path.abspath(args.lesion_masks)) if args.lesion_masks else None,
        anat_derivatives=(Path(os.path.abspath(args.anat_derivatives))
                          if args.anat_derivatives else None),
        compare_sessions=tuple(args.compare_sessions) if args.compare_sessions else None,
        compare_normalise=args.compare_normalise,
        compare_z_threshold=args.compare_z_threshold,
        atlases=tuple(a for a in dict.fromkeys(args.atlases) if a.lower() != 'none'),
        group_exclude=_group_rules(args),
        reference_group=args.reference_group,
        normative_covariates=tuple(dict.fromkeys(args.normative_covariates)),
        normative_fwhm=args.normative_fwhm, normative_z_threshold=args.normative_z_threshold,
        normative_min_volume=args.normative_min_volume,
        run_uuid=uuid.uuid4().hex[:12],
        version=__version__)


def _group_rules(args) -> tuple[str, ...]:
    rules = list(args.group_exclude)
    if args.exclude_fd_above is not None:
        rules.append(str(parse_rule(f'mean_fd>{args.exclude_fd_above!r}')))
    if args.exclude_qei_below is not None:
        rules.append(str(parse_rule(f'qei<{args.exclude_qei_below!r}')))
    return tuple(dict.fromkeys(rules))
