"""Normative z against direct leave-one-out computations."""

import numpy as np
import pytest

from bids_asl.quant.normative import NormativeModel, design, normative_z


def test_without_covariates_leave_one_out_is_the_plain_formula(rng):
    controls = rng.normal(50, 8, (12, 30))
    patients = rng.normal(45, 8, (3, 30))
    out = normative_z(controls, patients)
    for i in range(12):
        others = np.delete(controls, i, axis=0)
        z = (controls[i] - others.mean(axis=0)) / others.std(axis=0, ddof=1)
        assert out['controls'][i] == pytest.approx(z)
    z_pat = (patients - controls.mean(axis=0)) / controls.std(axis=0, ddof=1)
    assert out['patients'] == pytest.approx(z_pat)
    assert out['mean'] == pytest.approx(controls.mean(axis=0))


def test_with_covariates_leave_one_out_equals_refitting(rng):
    n = 15
    age = rng.uniform(20, 80, n)
    sex = rng.integers(0, 2, n).astype(float)
    cov = np.column_stack([age, sex])
    controls = 70 - 0.3 * age[:, None] + 4 * sex[:, None] + rng.normal(0, 5, (n, 10))
    out = normative_z(controls, x_controls=design(n, cov))
    for i in range(n):
        keep = np.arange(n) != i
        x = np.column_stack([np.ones(n - 1), cov[keep]])
        beta, *_ = np.linalg.lstsq(x, controls[keep], rcond=None)
        resid = controls[keep] - x @ beta
        s = np.sqrt((resid ** 2).sum(axis=0) / (n - 1 - 3))
        pred = np.concatenate([[1.0], cov[i]]) @ beta
        assert out['controls'][i] == pytest.approx((controls[i] - pred) / s, rel=1e-9)


def test_a_30_percent_deficit_gives_a_large_negative_z(rng):
    controls = rng.normal(50, 5, (20, 100))
    patient = rng.normal(50, 5, (1, 100))
    patient[0, :10] *= 0.7
    z = normative_z(controls, patient)['patients'][0]
    assert np.median(z[:10]) < -2.5 and abs(np.median(z[10:])) < 1.0


def test_too_few_controls_is_an_error():
    with pytest.raises(ValueError):
        normative_z(np.ones((2, 3)))


def test_patients_design_uses_the_controls_centre(rng):
    n = 10
    age = rng.uniform(20, 80, n)
    controls = 70 - 0.3 * age[:, None] + rng.normal(0, 2, (n, 4))
    x = design(n, age[:, None])
    patient_age = np.array([[75.0]])
    xp = design(1, patient_age, centre=age[:, None].mean(axis=0))
    out = normative_z(controls, controls[:1] * 0 + (70 - 0.3 * 75), x_controls=x, x_patients=xp)
    assert np.abs(out['patients']).max() < 2.0  # on the age trend: not abnormal


def test_missing_values_fit_each_column_on_the_controls_that_have_one(rng):
    n = 10
    age = rng.uniform(20, 80, n)
    x = design(n, age)
    controls = 60 - 0.2 * age[:, None] + rng.normal(0, 4, (n, 6))
    controls[2, 0] = np.nan
    controls[[1, 5, 7], 3] = np.nan
    patients = rng.normal(50, 4, (2, 6))
    xp = design(2, rng.uniform(20, 80, 2), centre=age.mean())
    out = normative_z(controls, patients, x_controls=x, x_patients=xp)
    for col in range(6):
        keep = np.isfinite(controls[:, col])
        beta, *_ = np.linalg.lstsq(x[keep], controls[keep, col], rcond=None)
        resid = controls[keep, col] - x[keep] @ beta
        s = np.sqrt((resid ** 2).sum() / (keep.sum() - 2))
        assert out['patients'][:, col] == pytest.approx((patients[:, col] - xp @ beta) / s)
        assert np.isnan(out['controls'][~keep, col]).all()
    assert np.isfinite(out['controls'][2, 1:]).all()


def test_left_out_scores_another_image_of_that_control_against_the_fit_without_it(rng):
    # a control's session image scored against the model fitted without that control
    n = 8
    sex = rng.integers(0, 2, n).astype(float)
    sex[:2] = (0, 1)
    x = design(n, sex)
    controls = 1000 + 5 * sex[:, None] + rng.normal(0, 3, (n, 5))  # large offset: shift
    session = controls[4] + rng.normal(0, 2, 5)
    model = NormativeModel(5, 2)
    for row, xi in zip(controls, x, strict=True):
        model.add(row, xi)
    z = model.z(session, x[4], left_out=controls[4])
    keep = np.arange(n) != 4
    beta, *_ = np.linalg.lstsq(x[keep], controls[keep], rcond=None)
    resid = controls[keep] - x[keep] @ beta
    s = np.sqrt((resid ** 2).sum(axis=0) / (n - 1 - 2))
    assert z == pytest.approx((session - x[4] @ beta) / s, rel=1e-7)


def test_model_on_images_keeps_the_shape_and_reports_unusable_voxels(rng):
    model = NormativeModel((3, 4), 1)
    for _ in range(5):
        image = rng.normal(50, 5, (3, 4))
        image[0, 0] = np.nan if _ < 3 else image[0, 0]  # only 2 controls there: unusable
        image[1, 1] = 42.0  # no variance: unusable
        model.add(image, [1.0])
    assert model.mean.shape == (3, 4)
    assert np.isnan(model.mean[0, 0]) and np.isnan(model.sd[1, 1])
    assert np.isnan(model.z(np.full((3, 4), 50.0), [1.0])[[0, 1], [0, 1]]).all()
    assert np.isfinite(model.z(np.full((3, 4), 50.0), [1.0])).sum() == 10
