import numpy as np
import pytest

from bids_asl.quant import motion


def test_rotation_matrix_by_hand():
    r = motion.rotation_matrix([0.0, 0.0, np.pi / 2])  # 90° about z maps x to y
    np.testing.assert_allclose(r @ [1, 0, 0], [0, 1, 0], atol=1e-15)
    r = motion.rotation_matrix([np.pi / 2, 0.0, 0.0])  # 90° about x maps y to z
    np.testing.assert_allclose(r @ [0, 1, 0], [0, 0, 1], atol=1e-15)


def test_params_round_trip(rng):
    for _ in range(20):
        p = np.concatenate([rng.uniform(-0.3, 0.3, 3), rng.uniform(-10, 10, 3)])
        c = rng.uniform(-50, 50, 3)
        m = motion.rigid_matrix(p, c)
        np.testing.assert_allclose(motion.rigid_params(m, c), p, atol=1e-12)
        np.testing.assert_allclose(m[:3, :3] @ m[:3, :3].T, np.eye(3), atol=1e-12)
        # the centre moves by exactly t
        np.testing.assert_allclose((m @ [*c, 1])[:3], c + p[3:], atol=1e-12)


def test_framewise_displacement_power():
    params = np.array([[0, 0, 0, 0, 0, 0],
                       [0.01, 0, 0, 0.5, 0, 0],
                       [0.01, -0.02, 0, 0.5, 0.3, -0.2]], dtype=float)
    # by hand: FD1 = 0.5 + 50*0.01 = 1.0; FD2 = (0.3 + 0.2) + 50*0.02 = 1.5
    np.testing.assert_allclose(motion.framewise_displacement(params), [0.0, 1.0, 1.5])
    with pytest.raises(ValueError):
        motion.framewise_displacement(np.zeros((3, 5)))


def test_confounds_table_column_order():
    from bids_asl.interfaces.motion import motion_table

    params = np.array([[0.01, 0.02, 0.03, 1.0, 2.0, 3.0]])  # quant order: rotations first
    header, row = motion_table(params, np.array([0.0]), ['control']).splitlines()
    cells = dict(zip(header.split('\t'), row.split('\t'), strict=True))
    assert cells['trans_x'] == '1' and cells['trans_z'] == '3'
    assert cells['rot_x'] == '0.01' and cells['rot_z'] == '0.03'
