"""transfer_pair's errors name its own arguments (target_head, target_degree), not MultiIndex's."""

import pytest

from pyfeat import tasks


@pytest.mark.parametrize("kwargs, message", [
    ({"target_head": "bogus"}, r"^target_head must be one of \('random', 'sum', 'product', 'hard'\)"),
    ({"target_head": 5}, r"^target_head must be one of"),
    ({"target_head": "product", "target_degree": 1}, r"^target_degree must be >= r for target_head='product', got target_degree=1, r=2$"),
    ({"target_head": "hard"}, r"^r must be 1 for target_head='hard'"),
    ({"target_head": {(0, 0): 1.0}}, r"^target_head: the coefficients must have degree >= 1$"),
    ({"target_head": {(1, 2): 1.0}, "target_degree": 4},
     r"^target_degree must match the degree 3 of the target_head coefficients, got target_degree=4$"),
    ({"target_head": {(1,): 1.0}}, r"^target_head: coefficients: every key must be a multi-index of 2"),
])
def test_target_head_errors_name_target_head(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tasks.transfer_pair(8, r=2, degree=4, **kwargs)


def test_target_heads_still_build():
    source, target = tasks.transfer_pair(8, r=2, degree=4, target_head="sum", seed=3)
    assert target.head == "sum" and target.degree == 4 and (target.U == source.U).all()
    source, target = tasks.transfer_pair(8, r=2, degree=4, target_head={(1, 2): 1.0}, seed=3)
    assert target.head == "coefficients" and target.degree == 3  # the coefficients' degree, not the source's
    _, again = tasks.transfer_pair(8, r=2, degree=4, seed=3)
    _, random = tasks.transfer_pair(8, r=2, degree=4, target_head="random", seed=3)
    assert again.head == random.head == "random" and again.hermite_coefficients == random.hermite_coefficients
