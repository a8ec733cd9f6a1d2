"""Step rewards from a served PRM, in the shapes RL trainers take.

    mmprm serve-prm --prm runs/demo-default/prm --port 8000 &
    mmprm synth --n 4 --seed 2 --split test --out runs/rl-data
    python examples/rl_reward.py http://127.0.0.1:8000 runs/rl-data/problems.jsonl

Prints one JSON object: the TRL-style rewards of a small batch, each
completion's step rewards, and verl's dict for one completion.
"""

import json
import sys

from mmprm.data import load_problems
from mmprm.rl import PRMReward, verl_compute_score

url, data = sys.argv[1], sys.argv[2]
problems = load_problems(data)[:2]

# A batch as TRL's GRPOTrainer passes it in the conversational format: a prompt per
# completion, the dataset's other columns (here `images`) as keyword arguments.
prompts, completions, images = [], [], []
for p in problems:
    steps = [s["text"] for s in p.meta["reference_steps"]]
    wrong = steps[:-1] + ["So the answer is \\boxed{12345}."]
    for solution in (steps, wrong):
        prompts.append([{"role": "user", "content": p.question}])
        completions.append([{"role": "assistant", "content": "\n\n".join(solution)}])
        images.append(p.images)  # absolute paths here; PIL images and data URIs work too

reward = PRMReward(url, aggregation="min")  # GRPOTrainer(..., reward_funcs=[reward])
outcome = reward(prompts, completions, images=images)
dense = reward.rewards(prompts, completions, images)

# verl: custom_reward_function.path=<mmprm>/rl.py, name=verl_compute_score,
# reward_kwargs={prm: URL, aggregation: min}; the question travels in extra_info.
p = problems[0]
verl = verl_compute_score("synthetic", completions[0][0]["content"], p.answer,
                          {"question": p.question, "images": p.images}, prm=url, aggregation="min")

print(json.dumps({"trl": outcome, "steps": [r.steps for r in dense], "step_rewards": [r.step_rewards for r in dense],
                  "step_ends": [r.step_ends for r in dense], "verl": verl}))
reward.close()
