"""Methods text for a run, generated from its CBF sidecar, with the references it cites.

Returns plain strings (the template escapes them). Only what the sidecar records is stated, so
the text cannot disagree with the numbers.
"""

from __future__ import annotations

REFERENCES = {
    'alsop2015': 'Alsop DC et al. Recommended implementation of arterial spin-labeled perfusion '
                 'MRI for clinical applications. Magn Reson Med 2015;73:102-116.',
    'buxton1998': 'Buxton RB et al. A general kinetic model for quantitative perfusion imaging '
                  'with arterial spin labeling. Magn Reson Med 1998;40:383-396.',
    'herscovitch1985': 'Herscovitch P, Raichle ME. What is the correct value for the brain-blood '
                       'partition coefficient for water? J Cereb Blood Flow Metab 1985;5:65-69.',
    'garcia2005': 'Garcia DM, Duhamel G, Alsop DC. Efficiency of inversion pulses for background '
                  'suppressed arterial spin labeling. Magn Reson Med 2005;54:366-372.',
    'power2012': 'Power JD et al. Spurious but systematic correlations in functional '
                 'connectivity MRI networks arise from subject motion. NeuroImage '
                 '2012;59:2142-2154.',
    'dolui2017': 'Dolui S et al. Structural Correlation-based Outlier Rejection (SCORE) '
                 'algorithm for arterial spin labeling time series. J Magn Reson Imaging '
                 '2017;45:1786-1797.',
    'dolui2024': 'Dolui S et al. Automated quality evaluation index for arterial spin labeling '
                 'derived cerebral blood flow maps. J Magn Reson Imaging 2024.',
    'mutsaerts2017': 'Mutsaerts HJMM et al. The spatial coefficient of variation in arterial '
                     'spin labeling cerebral blood flow images. J Cereb Blood Flow Metab '
                     '2017;37:3184-3192.',
    'avants2011': 'Avants BB et al. A reproducible evaluation of ANTs similarity metric '
                  'performance in brain image registration. NeuroImage 2011;54:2033-2044.',
}


def _fmt(value) -> str:
    if isinstance(value, float):
        return f'{value:g}'
    if isinstance(value, list):
        return ', '.join(_fmt(v) for v in value)
    return str(value)


def methods_text(sidecar: dict, *, motion_corrected: bool, outlier_methods: list[str],
                 version: str) -> tuple[list[str], list[str]]:
    """(paragraphs, reference keys in citation order) for one run."""
    cites: list[str] = []

    def cite(key: str) -> str:
        if key not in cites:
            cites.append(key)
        return f'[{cites.index(key) + 1}]'

    asl_type = sidecar.get('ArterialSpinLabelingType', 'ASL')
    multi = 'Model' in sidecar
    paras = []
    timing = (f'labelling duration {_fmt(sidecar["LabelingDuration"])} s, '
              if 'LabelingDuration' in sidecar else '')
    if 'BolusCutOffDelayTime' in sidecar:
        timing += (f'bolus duration {_fmt(sidecar["BolusCutOffDelayTime"])} s '
                   f'({sidecar.get("BolusCutOffTechnique", "bolus cut-off")}), ')
    field = sidecar.get('MagneticFieldStrength')
    paras.append(
        f'{asl_type} data acquired at {_fmt(field)} T ({timing}post-labelling delay(s) '
        f'{_fmt(sidecar.get("PostLabelingDelay", "n/a"))} s) were quantified with bids-asl '
        f'{version}.')
    m0 = sidecar.get('M0', {}) if isinstance(sidecar.get('M0'), dict) else {}
    if m0:
        paras.append(
            f'M0 ({sidecar.get("M0Type", "n/a")}): {m0.get("M0Source", "n/a")}; correction '
            f'{m0.get("M0Correction", "none")}, scale factor {_fmt(m0.get("M0ScaleFactor", 1))}.')
    constants = (
        f'blood T1 {_fmt(sidecar.get("BloodT1", "n/a"))} s ({sidecar.get("BloodT1Source", "")}) '
        f'{cite("alsop2015")}, partition coefficient '
        f'{_fmt(sidecar.get("PartitionCoefficient", "n/a"))} mL/g {cite("herscovitch1985")}, '
        f'labelling efficiency {_fmt(sidecar.get("LabelingEfficiency", "n/a"))} '
        f'({sidecar.get("LabelingEfficiencySource", "")})')
    if sidecar.get('BackgroundSuppressionEfficiency', 1.0) != 1.0:
        constants += (f', background-suppression efficiency '
                      f'{_fmt(sidecar["BackgroundSuppressionEfficiency"])} '
                      f'({sidecar.get("BackgroundSuppressionRule", "")}) {cite("garcia2005")}')
    if multi:
        paras.append(
            f'CBF and arterial transit time were fitted voxelwise with the general kinetic model '
            f'{cite("buxton1998")} ({sidecar.get("KineticModelVariant", "")}; '
            f'{sidecar.get("Fit", "")}; ATT prior {_fmt(sidecar.get("ATTPrior", "none"))}), '
            f'with {constants}.')
    else:
        paras.append(
            f'CBF was computed with the single-compartment consensus model {cite("alsop2015")} '
            f'({sidecar.get("Formula", "")}), averaged over '
            f'{sidecar.get("NumberOfDeltaMVolumes", "n/a")} ΔM volume(s), with {constants}.')
    if motion_corrected:
        paras.append(f'Volumes were realigned rigidly (ANTs, mutual information) '
                     f'{cite("avants2011")}; framewise displacement follows Power et al. '
                     f'{cite("power2012")}.')
    if outlier_methods and not multi:
        paras.append(f'Outlier-robust CBF: {", ".join(outlier_methods)} {cite("dolui2017")}.')
    paras.append(f'Quality metrics include the quality evaluation index {cite("dolui2024")} and '
                 f'the spatial coefficient of variation {cite("mutsaerts2017")}.')
    return paras, cites
