"""Running an annotation generator to its end against a policy, outside the runner."""

from mmprm.policy.base import Request, SamplingParams


def drive(gen, policy, problem):
    """The generator's result, each query answered by `policy` for `problem`."""
    reply = None
    while True:
        try:
            query = gen.send(reply)
        except StopIteration as stop:
            return stop.value
        reply = policy.sample_batch([Request(problem, query.prefix, query.seed)], SamplingParams(n=query.k))[0]
