"""nsprog.safety: safe neurosymbolic learning by differentiable symbolic execution (DSE).

Programs that mix neural networks with branching code are written in a small IR
(:mod:`~nsprog.safety.ir`) and given three meanings by one interpreter
(:mod:`~nsprog.safety.interpret`): concrete, join (DiffAI+ and the verifier) and sampled
symbolic paths (DSE). :mod:`~nsprog.safety.box` is the interval domain,
:mod:`~nsprog.safety.spec` the safety specifications, :mod:`~nsprog.safety.benchmarks` the
four benchmarks (thermostat, aircraft, racetrack, cartpole), :mod:`~nsprog.safety.train` the
three training modes, :mod:`~nsprog.safety.verify` the verifier, and
:mod:`~nsprog.safety.run` / :mod:`~nsprog.safety.table` the runs and the results table.
"""

from nsprog.safety.benchmarks import BENCHMARKS, Benchmark, get_benchmark
from nsprog.safety.box import Box, BoxError, Normalize, propagate
from nsprog.safety.config import MODES, SafetyRunConfig, SafetyTableConfig, TrainConfig, VerifyConfig
from nsprog.safety.interpret import Trace, run_program
from nsprog.safety.ir import Program, ProgramError, argmax
from nsprog.safety.spec import Constraint, Spec, SpecError, unsafe_value
from nsprog.safety.verify import VerifierError, VerifyResult, empirical_unsafe, verify

__all__ = [
    "Box", "BoxError", "Normalize", "propagate",
    "Program", "ProgramError", "argmax", "Trace", "run_program",
    "Constraint", "Spec", "SpecError", "unsafe_value",
    "Benchmark", "BENCHMARKS", "get_benchmark",
    "MODES", "TrainConfig", "VerifyConfig", "SafetyRunConfig", "SafetyTableConfig",
    "VerifierError", "VerifyResult", "verify", "empirical_unsafe",
]
