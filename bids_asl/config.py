"""The one frozen settings object, built by the CLI and saved as TOML with the outputs."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    bids_dir: Path
    output_dir: Path
    analysis_level: str
    participant_label: tuple[str, ...] = ()
    session_label: tuple[str, ...] = ()
    work_dir: Path | None = None
    nprocs: int = 1
    skip_bids_validation: bool = False
    verbose: int = 0
    t1_blood: float | None = None
    hematocrit: float | None = None
    partition_coefficient: float | None = None
    labeling_efficiency: float | None = None
    m0_scale: float = 1.0
    t1_tissue: float | None = None
    bs_efficiency_per_pulse: float | None = None
    allow_control_m0: bool = False
    m0_estimate: float | None = None
    kinetic_model: str = 'tissue'
    att_prior: tuple[float, ...] | None = None  # (mean, SD); None: the default for the type
    no_att_prior: bool = False
    fit_abv: bool = False
    t1_tissue_map: Path | None = None
    motion_correction: bool = True
    tissue_maps: Path | None = None
    outlier_methods: tuple[str, ...] = ('score', 'scrub')
    anatomy: bool = True
    atlases: tuple[str, ...] = ('AAL', 'HarvardOxford')
    pvc: bool = False
    asymmetry_fwhm: float = 8.0
    asymmetry_threshold: float = 0.15
    asymmetry_min_volume: float = 400.0
    group_exclude: tuple[str, ...] = ()  # group level: QC exclusion rules, e.g. 'mean_fd>0.5'
    lesion_masks: Path | None = None
    anat_derivatives: Path | None = None  # fMRIPrep/sMRIPrep outputs used for the anatomy
    compare_sessions: tuple[str, ...] | None = None  # (A, B): maps of A - B
    compare_normalise: bool = False
    compare_z_threshold: float = 3.0
    reference_group: tuple[str, ...] | None = None  # group level: (COLUMN, VALUE) of controls
    normative_covariates: tuple[str, ...] = ()  # participants.tsv columns in the linear model
    normative_fwhm: float = 8.0
    normative_z_threshold: float = 3.0
    normative_min_volume: float = 400.0
    run_uuid: str = ''
    version: str = ''

    @property
    def effective_work_dir(self) -> Path:
        return self.work_dir if self.work_dir is not None else self.output_dir / '.work'

    def to_dict(self) -> dict:
        out = {}
        for key, value in asdict(self).items():
            if value is None:
                continue  # TOML has no null: an absent key means "not given"
            out[key] = str(value) if isinstance(value, Path) else (
                list(value) if isinstance(value, tuple) else value)
        return out

    def to_toml(self) -> str:
        import tomli_w  # noqa: PLC0415 - not needed on the --help path

        return tomli_w.dumps({'bids_asl': self.to_dict()})

    @classmethod
    def from_toml(cls, text: str) -> Settings:
        data = tomllib.loads(text)['bids_asl']
        kinds = {f.name: f.type for f in fields(cls)}
        kwargs = {}
        for key, value in data.items():
            if key not in kinds:
                raise ValueError(f'unknown setting {key!r}')
            if key in ('bids_dir', 'output_dir', 'work_dir', 't1_tissue_map', 'tissue_maps',
                       'lesion_masks', 'anat_derivatives'):
                value = Path(value)
            elif isinstance(value, list):
                value = tuple(value)
            kwargs[key] = value
        return cls(**kwargs)
