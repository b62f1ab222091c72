"""Covariate coding of the normative model (bids_asl.quant.covariates) by hand."""

import numpy as np
import pytest

from bids_asl.quant.covariates import Covariate, CovariateCoding, NotScored, cell_value


def test_numeric_and_categorical_coding():
    reference = [{'age': '30', 'sex': 'M'}, {'age': '50', 'sex': 'F'}, {'age': '40.5', 'sex': 'M'}]
    coding = CovariateCoding.from_reference(('age', 'sex'), reference)
    assert coding.covariates == (Covariate('age'), Covariate('sex', ('F', 'M')))
    assert coding.n_params == 3
    assert coding.encode({'age': '61', 'sex': 'M'}) == [61.0, 1.0]  # F is the baseline
    assert coding.to_sidecar()['sex'] == {'Levels': ['F', 'M'], 'Baseline': 'F',
                                          'Coding': 'one indicator column per other level, '
                                                    'centred'}
    values = {'a': [30.0, 0.0], 'b': [50.0, 1.0], 'p': [70.0, 1.0]}
    centre, rows = coding.design_rows(values, ['a', 'b'])
    np.testing.assert_allclose(centre, [40.0, 0.5])
    np.testing.assert_allclose(rows['p'], [1.0, 30.0, 0.5])


def test_three_levels_give_two_indicator_columns():
    coding = CovariateCoding.from_reference(['site'], [{'site': s} for s in 'BCAB'])
    assert coding.n_params == 3
    assert coding.encode({'site': 'A'}) == [0.0, 0.0]
    assert coding.encode({'site': 'C'}) == [0.0, 1.0]


@pytest.mark.parametrize('cells,words', [
    ({'age': None}, 'n/a'), ({'age': 'old'}, 'not a finite number'),
    ({'age': 'nan'}, 'not a finite number')])
def test_a_participant_that_cannot_be_coded_is_not_scored(cells, words):
    coding = CovariateCoding((Covariate('age'),))
    with pytest.raises(NotScored, match=words):
        coding.encode(cells)
    with pytest.raises(NotScored, match='does not occur'):
        Covariate('sex', ('F', 'M')).encode('X')


def test_a_constant_covariate_is_refused():
    with pytest.raises(ValueError, match="'sex' takes one value"):
        CovariateCoding.from_reference(['sex'], [{'sex': 'F'}, {'sex': 'F'}, {'sex': None}])


def test_cells_and_intercept_only():
    assert cell_value(' n/a ') is None and cell_value('') is None and cell_value(' 3 ') == '3'
    centre, rows = CovariateCoding().design_rows({'a': [], 'b': []}, ['a', 'b'])
    assert centre.size == 0 and rows['a'].tolist() == [1.0]
