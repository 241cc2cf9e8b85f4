"""Exact-output tests for gpugrad.runtime.printing.format_tensor.

Expected strings are derived by hand from TF.js 4.22 tensor_format.ts
(subTensorToString) and from JS Number#toString / Number#toFixed rules.
"""

import numpy as np
import pytest

from gpugrad.runtime.printing import format_tensor, js_number_to_string


def f32(x):
    return np.array(x, dtype=np.float32)


# ---------------------------------------------------------------- seeds


def test_seed_outputs():
    assert format_tensor(f32([10, 12]), "float32") == "Tensor\n    [10, 12]"
    assert format_tensor(f32([11.5, 9.9]), "float32") == "Tensor\n    [11.5, 9.8999996]"
    # The seed grad is float32 15.440000534057617 (15.44 itself is 15.4399995...).
    assert (
        format_tensor(f32([53.51, 15.440000534057617]), "float32")
        == "Tensor\n    [53.5099983, 15.4400005]"
    )
    assert format_tensor(f32(768.2210083), "float32") == "Tensor\n    768.2210083007812"
    assert format_tensor(f32(444), "float32") == "Tensor\n    444"


# ---------------------------------------------------------------- JS toString


@pytest.mark.parametrize(
    "x, expected",
    [
        (444.0, "444"),
        (0.5, "0.5"),
        (-2.25, "-2.25"),
        (0.000001, "0.000001"),
        (1e-7, "1e-7"),
        (1.5e-7, "1.5e-7"),
        (1e21, "1e+21"),
        (1.5e21, "1.5e+21"),
        (1e20, "100000000000000000000"),
        (1.2345678901234568e20, "123456789012345680000"),
        (-0.0, "0"),
        (float("nan"), "NaN"),
        (float("inf"), "Infinity"),
        (float("-inf"), "-Infinity"),
    ],
)
def test_js_number_to_string(x, expected):
    assert js_number_to_string(x) == expected


# ---------------------------------------------------------------- rank 0


@pytest.mark.parametrize(
    "value, dtype, expected",
    [
        (f32(9.9), "float32", "9.899999618530273"),
        (f32(0.1), "float32", "0.10000000149011612"),
        (f32(1e-8), "float32", "9.99999993922529e-9"),
        (f32(np.nan), "float32", "NaN"),
        (f32(np.inf), "float32", "Infinity"),
        (f32(-np.inf), "float32", "-Infinity"),
        (f32(-0.0), "float32", "0"),
        (np.array(0.1, dtype=np.float64), "float64", "0.1"),
        (np.array(-7, dtype=np.int32), "int32", "-7"),
        (np.array(True), "bool", "true"),
        (np.array(False), "bool", "false"),
    ],
)
def test_rank0(value, dtype, expected):
    assert format_tensor(value, dtype) == "Tensor\n    " + expected


# ---------------------------------------------------------------- rank 1


def test_rank1():
    assert format_tensor(f32([1, 2.5, -3]), "float32") == "Tensor\n    [1, 2.5, -3]"


def test_rank1_empty():
    assert format_tensor(f32([]), "float32") == "Tensor\n    []"


def test_rank1_length20_not_truncated():
    expected = "[" + ", ".join(str(i) for i in range(20)) + "]"
    assert format_tensor(f32(np.arange(20)), "float32") == "Tensor\n    " + expected


def test_rank1_truncated():
    assert (
        format_tensor(f32(np.arange(21) * 1.5), "float32")
        == "Tensor\n    [0, 1.5, 3, ..., 27, 28.5, 30]"
    )
    assert (
        format_tensor(f32(np.arange(31) * 1.5), "float32")
        == "Tensor\n    [0, 1.5, 3, ..., 42, 43.5, 45]"
    )


# ---------------------------------------------------------------- rank >= 2


def test_rank2_column_padding():
    assert format_tensor(f32([[1, -22.5], [333, 4]]), "float32") == (
        "Tensor\n"
        "    [[1  , -22.5],\n"
        "     [333, 4    ]]"
    )


def test_rank3():
    assert format_tensor(f32(np.arange(8).reshape(2, 2, 2)), "float32") == (
        "Tensor\n"
        "    [[[0, 1],\n"
        "      [2, 3]],\n"
        "\n"
        "     [[4, 5],\n"
        "      [6, 7]]]"
    )


def test_rank4():
    assert format_tensor(f32(np.arange(16).reshape(2, 2, 2, 2)), "float32") == (
        "Tensor\n"
        "    [[[[0 , 1 ],\n"
        "       [2 , 3 ]],\n"
        "\n"
        "      [[4 , 5 ],\n"
        "       [6 , 7 ]]],\n"
        "\n"
        "\n"
        "     [[[8 , 9 ],\n"
        "       [10, 11]],\n"
        "\n"
        "      [[12, 13],\n"
        "       [14, 15]]]]"
    )


def test_rank5():
    assert format_tensor(f32([5, 6]).reshape(2, 1, 1, 1, 1), "float32") == (
        "Tensor\n"
        "    [ [ [ [[5],]]],\n"
        "\n"
        "\n"
        "\n"
        "      [ [ [[6],]]]]"
    )
    # Every size-1 axis adds the " [...]" / ",]" quirk.
    assert (
        format_tensor(f32([1, 2]).reshape(1, 1, 1, 1, 2), "float32")
        == "Tensor\n     [ [ [ [[1, 2],]]]]"
    )


def test_21x1_truncated():
    assert format_tensor(f32(np.arange(21).reshape(21, 1)), "float32") == (
        "Tensor\n"
        "    [[0 ],\n"
        "     [1 ],\n"
        "     [2 ],\n"
        "     ...,\n"
        "     [18],\n"
        "     [19],\n"
        "     [20]]"
    )


def test_20x20_full():
    out = format_tensor(f32(np.arange(400).reshape(20, 20)), "float32")
    lines = out.split("\n")
    assert len(lines) == 21
    assert lines[0] == "Tensor"
    assert lines[1] == (
        "    [[0  , 1  , 2  , 3  , 4  , 5  , 6  , 7  , 8  , 9  , 10 , 11 , 12 ,"
        " 13 , 14 , 15 , 16 , 17 , 18 , 19 ],"
    )
    assert lines[2] == (
        "     [20 , 21 , 22 , 23 , 24 , 25 , 26 , 27 , 28 , 29 , 30 , 31 , 32 ,"
        " 33 , 34 , 35 , 36 , 37 , 38 , 39 ],"
    )
    assert lines[20] == (
        "     [380, 381, 382, 383, 384, 385, 386, 387, 388, 389, 390, 391, 392,"
        " 393, 394, 395, 396, 397, 398, 399]]"
    )
    assert all(line.startswith("     [") and line.endswith("],") for line in lines[2:20])
    assert "..." not in out


def test_25x25_truncated():
    assert format_tensor(f32(np.arange(625).reshape(25, 25)), "float32") == (
        "Tensor\n"
        "    [[0  , 1  , 2  , ..., 22 , 23 , 24 ],\n"
        "     [25 , 26 , 27 , ..., 47 , 48 , 49 ],\n"
        "     [50 , 51 , 52 , ..., 72 , 73 , 74 ],\n"
        "     ...,\n"
        "     [550, 551, 552, ..., 572, 573, 574],\n"
        "     [575, 576, 577, ..., 597, 598, 599],\n"
        "     [600, 601, 602, ..., 622, 623, 624]]"
    )


def test_padding_counts_hidden_rows():
    values = np.zeros((21, 2), dtype=np.float32)
    values[10, 0] = 1234.5  # a row that is not shown still widens column 0
    row = "[0     , 0]"
    assert format_tensor(values, "float32") == (
        "Tensor\n"
        f"    [{row},\n"
        f"     {row},\n"
        f"     {row},\n"
        "     ...,\n"
        f"     {row},\n"
        f"     {row},\n"
        f"     {row}]"
    )


def test_rank3_truncated_outer_axis():
    assert format_tensor(f32(np.arange(42).reshape(21, 2, 1)), "float32") == (
        "Tensor\n"
        "    [[[0 ],\n"
        "      [1 ]],\n"
        "\n"
        "     [[2 ],\n"
        "      [3 ]],\n"
        "\n"
        "     [[4 ],\n"
        "      [5 ]],\n"
        "\n"
        "     ...\n"
        "     [[36],\n"
        "      [37]],\n"
        "\n"
        "     [[38],\n"
        "      [39]],\n"
        "\n"
        "     [[40],\n"
        "      [41]]]"
    )


def test_21x1x1_quirk():
    assert format_tensor(f32(np.arange(21).reshape(21, 1, 1)), "float32") == (
        "Tensor\n"
        "    [ [[0 ],],\n"
        "\n"
        "      [[1 ],],\n"
        "\n"
        "      [[2 ],],\n"
        "\n"
        "     ...\n"
        "      [[18],],\n"
        "\n"
        "      [[19],],\n"
        "\n"
        "      [[20],]]"
    )


# ---------------------------------------------------------------- dtypes


def test_int32():
    assert (
        format_tensor(np.array([1, -2, 2147483647], dtype=np.int32), "int32")
        == "Tensor\n    [1, -2, 2147483647]"
    )
    assert format_tensor(np.array([[1, -20], [300, 4]], dtype=np.int32), "int32") == (
        "Tensor\n"
        "    [[1  , -20],\n"
        "     [300, 4  ]]"
    )
    assert (
        format_tensor(np.arange(30, dtype=np.int32), "int32")
        == "Tensor\n    [0, 1, 2, ..., 27, 28, 29]"
    )


def test_bool():
    assert (
        format_tensor(np.array([True, False, True]), "bool")
        == "Tensor\n    [true, false, true]"
    )
    assert format_tensor(np.array([[True, False], [False, True]]), "bool") == (
        "Tensor\n"
        "    [[true , false],\n"
        "     [false, true ]]"
    )


def test_float64():
    # 0.1 + 0.2 = 0.30000000000000004 rounds to 7 decimals.
    assert (
        format_tensor(np.array([0.1 + 0.2, 1 / 3]), "float64")
        == "Tensor\n    [0.3, 0.3333333]"
    )


# ---------------------------------------------------------------- special values


def test_nan_infinity_negative_zero():
    assert (
        format_tensor(f32([np.nan, np.inf, -np.inf, -0.0]), "float32")
        == "Tensor\n    [NaN, Infinity, -Infinity, 0]"
    )
    # toFixed gives "-0.0000000"; parseFloat makes -0, which prints as "0".
    assert format_tensor(f32([-1e-9, 2]), "float32") == "Tensor\n    [0, 2]"


def test_tiny_values():
    # float32 5e-8 is 5.0000000584e-8, so it rounds up to 1e-7.
    assert format_tensor(f32([1e-8, 5e-8, -5e-8]), "float32") == "Tensor\n    [0, 1e-7, -1e-7]"
    # float32 2.5e-7 is 2.4999999937e-7; float32 1.5e-7 is 1.5000000531e-7.
    assert format_tensor(f32([2.5e-7, 1.5e-7]), "float32") == "Tensor\n    [2e-7, 2e-7]"


def test_to_fixed_rounds_exact_ties_half_up():
    # 2**-8 = 0.00390625 exactly: a true tie at the 8th decimal, rounded away from 0.
    assert (
        format_tensor(f32([0.00390625, -0.00390625, 1.00390625]), "float32")
        == "Tensor\n    [0.0039063, -0.0039063, 1.0039063]"
    )
    assert format_tensor(f32([123456.7890625]), "float32") == "Tensor\n    [123456.7890625]"


def test_huge_values():
    # float32 1e20 = 100000002004087734272 (< 1e21, so toFixed keeps all digits).
    # float32 1e21 >= 1e21, so toFixed falls back to toString.
    assert format_tensor(f32([1e20, 1e21, -1e21]), "float32") == (
        "Tensor\n    [100000002004087730000, 1.0000000200408773e+21, -1.0000000200408773e+21]"
    )
    assert format_tensor(f32([[1e21, 1], [2, 3]]), "float32") == (
        "Tensor\n"
        "    [[1.0000000200408773e+21, 1],\n"
        "     [2" + " " * 21 + ", 3]]"
    )


# ---------------------------------------------------------------- verbose


def test_verbose():
    assert format_tensor(f32([[1, 2], [3, 4]]), "float32", verbose=True) == (
        "Tensor\n"
        "  dtype: float32\n"
        "  rank: 2\n"
        "  shape: [2,2]\n"
        "  values:\n"
        "    [[1, 2],\n"
        "     [3, 4]]"
    )
    assert format_tensor(np.array(444, dtype=np.int32), "int32", True) == (
        "Tensor\n"
        "  dtype: int32\n"
        "  rank: 0\n"
        "  shape: []\n"
        "  values:\n"
        "    444"
    )


# ---------------------------------------------------------------- quirks


def test_first_axis_one_quirk():
    assert (
        format_tensor(f32([[1.25, 2, 3]]), "float32")
        == "Tensor\n     [[1.25, 2, 3],]"
    )


def test_empty_rank2():
    assert format_tensor(np.zeros((0, 3), dtype=np.float32), "float32") == "Tensor\n     []"
    assert format_tensor(np.zeros((2, 0), dtype=np.float32), "float32") == (
        "Tensor\n"
        "    [[],\n"
        "     []]"
    )
