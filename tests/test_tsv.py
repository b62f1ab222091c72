"""bids_asl.io.tsv: the one TSV writer and reader (cells, atomic whole and streaming writes)."""

import math

import numpy as np
import pytest

from bids_asl.errors import OutputError
from bids_asl.io import tsv


def test_cells():
    assert [tsv.cell(v) for v in (None, '', float('nan'), -math.inf, np.float64('nan'))] == \
        ['n/a'] * 5  # the group tables once wrote 'nan' for a NaN
    assert tsv.cell(1 / 3) == '0.333333' and tsv.cell(12345678.9) == '1.23457e+07'
    assert tsv.cell(7) == '7' and tsv.cell('Frontal Pole') == 'Frontal Pole'
    assert tsv.cell([3, 4]) == '3+4' and tsv.cell((5,)) == '5'
    assert tsv.cell('a\tb\nc') == 'a b c'  # would break the table


def test_whole_table_round_trips(tmp_path):
    path = tsv.write_tsv(tmp_path / 'x' / 't.tsv', ('a', 'b', 'c'),
                         [{'a': 1, 'b': 2.5}, [None, 'y', float('nan')]])
    assert path.read_text() == 'a\tb\tc\n1\t2.5\tn/a\nn/a\ty\tn/a\n'
    assert tsv.read_tsv(path) == [{'a': '1', 'b': '2.5', 'c': 'n/a'},
                                  {'a': 'n/a', 'b': 'y', 'c': 'n/a'}]
    assert tsv.tsv_text(('a', 'b', 'c'), [{'a': 1, 'b': 2.5}]) == \
        'a\tb\tc\n1\t2.5\tn/a\n'


def test_streaming_writer_is_atomic(tmp_path):
    path = tmp_path / 't.tsv'
    path.write_text('old\n')
    with pytest.raises(RuntimeError):
        with tsv.TsvWriter(path, ('a',)) as out:
            out.write({'a': 1})
            raise RuntimeError('the producer failed')
    assert path.read_text() == 'old\n' and list(tmp_path.iterdir()) == [path]
    with tsv.TsvWriter(path, ('a',)) as out:
        for i in range(3):
            out.write([i])
            assert path.read_text() == 'old\n'  # nothing visible before the rename
    assert path.read_text() == 'a\n0\n1\n2\n' and out.n_rows == 3
    assert [r['a'] for r in tsv.iter_rows(path)] == ['0', '1', '2']


def test_unwritable_folder_is_an_output_error(tmp_path):
    (tmp_path / 'file').write_text('')
    with pytest.raises(OutputError):
        tsv.write_tsv(tmp_path / 'file' / 't.tsv', ('a',), [])


def test_column_sidecar():
    assert tsv.column_sidecar({'a': 'A', 'b': 'B'}, ('b', 'c')) == {'b': {'Description': 'B'}}
