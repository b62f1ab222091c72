"""The derivative-naming table: every file the app writes, declared once, for writing and reading.

Each :class:`Output` names one kind of file by a template such as
``{stem}_space-{space}_desc-stderr_cbf.nii.gz``: ``{stem}`` is the file stem of the run (the ASL
file's name without ``_asl.nii.gz``), of the subject (``sub-X``), of a session comparison (the
runs' stem without the session) or ``group``; the other fields are entity values, each with the
pattern it must match (:data:`FIELDS`). The level of an output decides its folder
(:data:`LEVELS`). Writers call :func:`path_for` (or :func:`name_for`) and :func:`sidecar_of`;
readers call :func:`parse`, which returns the output, stem and field values of a path, or None
for a file the table does not know. ``docs/outputs.md`` carries the table rendered by
:func:`markdown_table` (a test checks it is current).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from bids_asl.constants import TEMPLATE
from bids_asl.errors import OutputError

#: Entity keys of the derivative entities, which never belong to a source stem.
DERIVATIVE_KEYS = ('from', 'to', 'mode', 'space', 'seg', 'label', 'desc')
_STEM_ENTITY = rf'_(?!(?:{"|".join(DERIVATIVE_KEYS)})-)[a-z]+-[A-Za-z0-9]+'
#: Stem patterns of the levels (a source stem may carry any BIDS entity but the derivative ones).
_SUBJECT = r'sub-[A-Za-z0-9]+'
_SOURCE_STEM = rf'{_SUBJECT}(?:{_STEM_ENTITY})*'
_SESSION_STEM = rf'{_SUBJECT}(?:_ses-[A-Za-z0-9]+)?'

#: Placeholder → pattern of its value.
FIELDS = {
    'space': rf'T1w|{TEMPLATE}|MNI152NLin2009cAsym',  # 2009cAsym: --anat-derivatives
    'template': TEMPLATE,
    'label': 'GM|WM|CSF',
    'tissue': 'GM|WM',
    'atlas': '[A-Za-z0-9]+',
    'measure': 'cbf|att',
    'stat': 'mean|sd',
    'Stat': 'Mean|Sd',
    'comparison': '[A-Za-z0-9]+Minus[A-Za-z0-9]+',
}


@dataclass(frozen=True)
class Level:
    """Where the outputs of one level live, and what their ``{stem}`` is."""

    name: str
    stem: str       # pattern of the stem
    folder: str     # folder template under the output dir, from the stem's sub/ses labels
    description: str


LEVELS = {level.name: level for level in (
    Level('run', _SOURCE_STEM, 'sub-{sub}/[ses-{ses}/]perf',
          'one ASL run; the stem is the ASL file name without `_asl.nii.gz`'),
    Level('anat', _SUBJECT, 'sub-{sub}/anat', 'one subject\'s T1w; the stem is `sub-<label>`'),
    Level('comparison', _SOURCE_STEM, 'sub-{sub}/perf',
          'one session comparison; the stem is the runs\' stem without `ses-`'),
    Level('group', 'group', 'group', 'the group level; the stem is `group`'),
    Level('normative', _SESSION_STEM, 'group/normative',
          'one participant session scored against the reference group'),
)}

CBF_UNITS = 'mL/100g/min'


@dataclass(frozen=True)
class Output:
    """One kind of derivative file."""

    key: str
    level: str
    template: str
    description: str
    units: str | dict | None = None  # dict: by the value of the ``measure`` field
    sidecar: bool = True

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(f for _, f, _, _ in string.Formatter().parse(self.template)
                     if f and f != 'stem')

    @property
    def extension(self) -> str:
        return next(e for e in EXTENSIONS if self.template.endswith(e))

    def units_for(self, values: dict) -> str | None:
        if isinstance(self.units, dict):
            return self.units.get(values.get('measure'))
        return self.units

    @property
    def pattern(self) -> re.Pattern:
        return _compiled(self.template, self.level)


EXTENSIONS = ('.nii.gz', '.tsv', '.txt', '.json')
_MEASURE_UNITS = {'cbf': CBF_UNITS, 'att': 's'}

OUTPUTS = {o.key: o for o in (
    # the participant level: one run, on its own grid
    Output('mask', 'run', '{stem}_desc-brain_mask.nii.gz', 'brain mask (ASL grid)'),
    Output('m0', 'run', '{stem}_desc-calibration_m0scan.nii.gz',
           'M0 used for calibration (after TR correction and scaling)',
           'arbitrary (scanner units, as ΔM)'),
    Output('deltam_mean', 'run', '{stem}_desc-mean_deltam.nii.gz',
           'mean ΔM = control − label (multi-delay: one volume per delay)',
           'arbitrary (scanner units)'),
    Output('cbf', 'run', '{stem}_cbf.nii.gz', 'CBF', CBF_UNITS),
    Output('cbf_timeseries', 'run', '{stem}_desc-timeseries_cbf.nii.gz',
           'CBF of each ΔM volume, in order', CBF_UNITS),
    Output('att', 'run', '{stem}_att.nii.gz', 'arterial transit time (multi-delay)', 's'),
    Output('cbf_se', 'run', '{stem}_desc-stderr_cbf.nii.gz', 'standard error of CBF', CBF_UNITS),
    Output('att_se', 'run', '{stem}_desc-stderr_att.nii.gz', 'standard error of ATT', 's'),
    Output('rsquared', 'run', '{stem}_desc-fit_rsquared.nii.gz', 'R² of the kinetic fit',
           'unitless'),
    Output('abv', 'run', '{stem}_abv.nii.gz', 'arterial blood volume fraction', 'fraction'),
    Output('score_cbf', 'run', '{stem}_desc-score_cbf.nii.gz', 'SCORE outlier-robust CBF',
           CBF_UNITS),
    Output('scrub_cbf', 'run', '{stem}_desc-scrub_cbf.nii.gz', 'SCRUB robust CBF', CBF_UNITS),
    Output('confounds', 'run', '{stem}_desc-confounds_timeseries.tsv',
           'per-volume motion parameters, FD, volume type, SCORE outliers'),
    Output('qc', 'run', '{stem}_desc-qc_cbf.tsv', 'QC metrics of the run (one row)'),
    # the participant level: anatomy of a run
    Output('probseg', 'run', '{stem}_label-{label}_probseg.nii.gz',
           'tissue fraction of each ASL voxel'),
    Output('cbf_space', 'run', '{stem}_space-{space}_cbf.nii.gz', 'CBF resampled', CBF_UNITS),
    Output('att_space', 'run', '{stem}_space-{space}_att.nii.gz', 'ATT resampled', 's'),
    Output('cbf_se_space', 'run', '{stem}_space-{space}_desc-stderr_cbf.nii.gz',
           'standard error of CBF, resampled', CBF_UNITS),
    Output('mask_space', 'run', '{stem}_space-{space}_desc-brain_mask.nii.gz',
           'the brain mask in template space'),
    Output('cbf_pvc', 'run', '{stem}_desc-pvc{tissue}_cbf.nii.gz',
           'partial-volume corrected GM or WM CBF', CBF_UNITS),
    Output('xfm_asl', 'run', '{stem}_from-asl_to-{space}_mode-image_xfm.txt',
           'ASL → T1w (or template) rigid/affine transform, ITK text', sidecar=False),
    Output('asymmetry', 'run', '{stem}_space-{template}_desc-asymmetry_cbf.nii.gz',
           'voxelwise left/right asymmetry index of CBF', 'unitless'),
    Output('asymmetry_clusters', 'run', '{stem}_space-{template}_desc-asymmetry_clusters.tsv',
           'clusters of left/right asymmetry'),
    Output('lesions', 'run', '{stem}_desc-lesions_cbf.tsv',
           'CBF in lesions, rings around them and NAWM', CBF_UNITS),
    Output('regional', 'run', '{stem}_space-{template}_seg-{atlas}_desc-regional_{measure}.tsv',
           'regional CBF (ATT) of an atlas, with left/right', _MEASURE_UNITS),
    Output('tissue', 'run', '{stem}_desc-tissue_cbf.tsv', 'CBF in GM, WM and the brain mask'),
    # the participant level: the subject's T1w
    Output('t1w_preproc', 'anat', '{stem}_desc-preproc_T1w.nii.gz', 'T1w after N4'),
    Output('t1w_mask', 'anat', '{stem}_desc-brain_mask.nii.gz', 'T1w brain mask'),
    Output('t1w_probseg', 'anat', '{stem}_label-{label}_probseg.nii.gz', 'tissue probability'),
    Output('dseg', 'anat', '{stem}_dseg.nii.gz', 'hard segmentation: 1 GM, 2 WM, 3 CSF'),
    Output('dseg_tsv', 'anat', '{stem}_dseg.tsv', 'the labels of the segmentation',
           sidecar=False),
    Output('t1w_template', 'anat', '{stem}_space-{template}_desc-preproc_T1w.nii.gz',
           'T1w in template space'),
    Output('xfm_affine', 'anat', '{stem}_from-T1w_to-{template}_mode-image_desc-affine_xfm.txt',
           'T1w → template affine, ITK text', sidecar=False),
    Output('xfm_warp', 'anat', '{stem}_from-T1w_to-{template}_mode-image_desc-warp_xfm.nii.gz',
           'T1w → template displacement field', sidecar=False),
    Output('xfm_inverse_warp', 'anat',
           '{stem}_from-{template}_to-T1w_mode-image_desc-warp_xfm.nii.gz',
           'template → T1w displacement field', sidecar=False),
    # the participant level: --compare-sessions A B (before the plain difference: its
    # comparison pattern would also take the Percent/Z endings)
    Output('comparison_percent', 'comparison',
           '{stem}_space-{space}_desc-{comparison}Percent_cbf.nii.gz',
           'percent CBF change 100 (A − B) / B', 'percent'),
    Output('comparison_z', 'comparison', '{stem}_space-{space}_desc-{comparison}Z_cbf.nii.gz',
           'z = (A − B) / √(SE_A² + SE_B²)', 'unitless'),
    Output('comparison', 'comparison', '{stem}_space-{space}_desc-{comparison}_cbf.nii.gz',
           'CBF difference A − B', CBF_UNITS),
    Output('comparison_clusters', 'comparison',
           '{stem}_space-{template}_desc-{comparison}_clusters.tsv', 'clusters of |z|'),
    Output('comparison_regional', 'comparison',
           '{stem}_space-{template}_seg-{atlas}_desc-{comparison}_cbf.tsv',
           'regional CBF change of an atlas'),
    # the group level
    Output('group_qc', 'group', '{stem}_desc-qc_cbf.tsv', 'one QC row per run, with exclusions'),
    Output('group_regional', 'group', '{stem}_desc-regional_cbf.tsv',
           'regional CBF of every run, long format'),
    Output('group_tissue', 'group', '{stem}_desc-tissue_cbf.tsv',
           'tissue CBF of every run, long format'),
    Output('group_map', 'group', '{stem}_space-{template}_desc-{stat}_{measure}.nii.gz',
           'mean and SD (ddof = 1) across subjects', _MEASURE_UNITS),
    Output('group_count', 'group', '{stem}_space-{template}_desc-count_{measure}.nii.gz',
           'subjects with a value, per voxel', 'subjects'),
    Output('normative_map', 'group', '{stem}_space-{template}_desc-normative{Stat}_cbf.nii.gz',
           'the reference model: prediction at the covariate centre, residual SD', CBF_UNITS),
    Output('normative_count', 'group', '{stem}_space-{template}_desc-normativeCount_cbf.nii.gz',
           'reference participants with a value, per voxel', 'participants'),
    Output('normative_regional', 'group', '{stem}_desc-normativeZ_cbf.tsv',
           'regional normative z, long format'),
    Output('normative_clusters', 'group', '{stem}_desc-normativeClusters_cbf.tsv',
           'clusters of |z| above threshold'),
    Output('normative_z', 'normative', '{stem}_space-{template}_desc-normativeZ_cbf.nii.gz',
           'CBF z-score against the reference group', 'z'),
)}


@cache
def _compiled(template: str, level: str) -> re.Pattern:
    parts = []
    for literal, name, _, _ in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if name == 'stem':
            parts.append(f'(?P<stem>{LEVELS[level].stem})')
        elif name:
            parts.append(f'(?P<{name}>{FIELDS[name]})')
    return re.compile(''.join(parts))


def name_for(key: str, stem: str, **values) -> str:
    """The file name of output ``key`` for ``stem`` and the field values (OutputError when a
    value is missing or does not match its pattern, e.g. a label that is not alphanumeric)."""
    output = OUTPUTS[key]
    if 'template' in output.fields:
        values.setdefault('template', TEMPLATE)
    missing = set(output.fields) - set(values)
    if missing:
        raise OutputError(f'{key}: no value for {", ".join(sorted(missing))}', field='name')
    name = output.template.format(stem=stem, **values)
    if not output.pattern.fullmatch(name):
        raise OutputError(f'{name!r} is not a valid {key} name ({output.template}; labels '
                          'are letters and digits only)', field='name')
    return name


def folder_for(level: str, stem: str) -> Path:
    """The folder (relative to the output dir) of a level's files with this stem."""
    entities = stem_entities(stem)
    folder = LEVELS[level].folder
    folder = re.sub(r'\[([^]]*)\]', lambda m: m[1] if entities.get('ses') else '', folder)
    return Path(folder.format(**entities))


def path_for(output_dir, key: str, stem: str, **values) -> Path:
    """``OUTPUT_DIR/<folder of the level>/<name>``."""
    return Path(output_dir) / folder_for(OUTPUTS[key].level, stem) / name_for(key, stem, **values)


def sidecar_of(path) -> Path:
    """The JSON sidecar of a data file (``x.nii.gz``, ``x.tsv`` → ``x.json``)."""
    path = Path(path)
    for extension in EXTENSIONS:
        if path.name.endswith(extension):
            return path.with_name(path.name[:-len(extension)] + '.json')
    raise ValueError(f'{path.name}: not a derivative data file')


def stem_entities(stem: str) -> dict[str, str]:
    """``sub-01_ses-a_run-2`` → ``{'sub': '01', 'ses': 'a', 'run': '2'}``."""
    return dict(part.split('-', 1) for part in stem.split('_') if '-' in part)


@dataclass(frozen=True)
class Parsed:
    """What :func:`parse` found: the output, the stem, the field values, and whether the path
    is the output's JSON sidecar rather than the data file."""

    output: Output
    stem: str
    values: dict = field(default_factory=dict)
    is_sidecar: bool = False

    @property
    def key(self) -> str:
        return self.output.key

    @property
    def entities(self) -> dict[str, str]:
        return stem_entities(self.stem)


def _folder_levels(path: Path) -> tuple[str, ...]:
    parent = path.parent.name
    if parent == 'perf':
        return ('comparison', 'run')
    return {'anat': ('anat',), 'group': ('group',), 'normative': ('normative',)}.get(parent, ())


def parse(path, *, check_folder: bool = True) -> Parsed | None:
    """The table entry of a derivative file (or its JSON sidecar), or None.

    With ``check_folder`` the file must be in its level's folder (``perf``, ``anat``,
    ``group``, ``group/normative``); without, the first entry matching the name is returned.
    """
    path = Path(path)
    name, is_sidecar = path.name, False
    levels = _folder_levels(path) if check_folder else tuple(LEVELS)
    candidates = [name]
    if name.endswith('.json'):
        is_sidecar = True
        candidates = [name[:-5] + e for e in EXTENSIONS[:-1]]
    for output in OUTPUTS.values():
        if output.level not in levels or (is_sidecar and not output.sidecar):
            continue
        for candidate in candidates:
            match = output.pattern.fullmatch(candidate)
            if match:
                values = {k: v for k, v in match.groupdict().items() if k != 'stem'}
                parsed = Parsed(output, match['stem'], values, is_sidecar)
                if check_folder and not _in_folder(path, parsed):
                    continue
                return parsed
    return None


def _in_folder(path: Path, parsed: Parsed) -> bool:
    expected = folder_for(parsed.output.level, parsed.stem).parts
    return path.parent.parts[-len(expected):] == expected


def markdown_table() -> str:
    """The table as Markdown, for ``docs/outputs.md``."""
    lines = ['| level | file (under its folder) | sidecar | units | content |',
             '|---|---|---|---|---|']
    for output in OUTPUTS.values():
        units = output.units
        if isinstance(units, dict):
            units = ', '.join(f'{v} ({k})' for k, v in units.items())
        lines.append(f'| {output.level} | `{output.template}` | '
                     f'{"yes" if output.sidecar else "no"} | {units or ""} | '
                     f'{output.description} |')
    folders = [f'`{lvl.name}`: `{lvl.folder}/` ({lvl.description})' for lvl in LEVELS.values()]
    fields = [f'`{{{k}}}`: `{v}`' for k, v in FIELDS.items()]
    return ('\n'.join(lines) + '\n\nFolders: ' + '; '.join(folders) + '.\n\nFields: '
            + '; '.join(fields) + '.\n')
