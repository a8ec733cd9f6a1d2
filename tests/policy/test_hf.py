"""The hf backend: batching, prefixes, sampling settings, images, text-only models."""

from __future__ import annotations

import base64
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from PIL import Image
from transformers import (
    GenerationConfig,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen2VLForConditionalGeneration,
)

from mmprm.policy.base import Request, SamplingParams
from mmprm.policy.hf import HFPolicy
from mmprm.policy.prompt import build_messages
from mmprm.policy.tiny.model import new_tiny_policy, save_policy, tiny_config
from mmprm.policy.tiny.tokenizer import train_tokenizer
from mmprm.steps import render_steps
from mmprm.types import Problem


def _spread(lm_head: torch.nn.Linear) -> None:
    """Untrained tied embeddings only ever repeat the last token; an untied,
    wide output layer gives varied text with well-separated logits."""
    with torch.no_grad():
        lm_head.weight.normal_(0, 1.0)


@pytest.fixture(scope="module")
def vlm(tmp_path_factory):
    torch.manual_seed(0)
    _, processor = new_tiny_policy()
    config = tiny_config(processor.tokenizer)
    config.tie_word_embeddings = False
    model = Qwen2VLForConditionalGeneration(config)
    _spread(model.lm_head)
    model.generation_config = GenerationConfig(eos_token_id=[config.text_config.eos_token_id], pad_token_id=0)
    path = save_policy(model, processor, tmp_path_factory.mktemp("vlm"))
    return HFPolicy(path, batch_size=4)


@pytest.fixture(scope="module")
def text_lm(tmp_path_factory):
    torch.manual_seed(0)
    tok = train_tokenizer()
    config = Qwen2Config(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
    )
    model = Qwen2ForCausalLM(config)
    _spread(model.lm_head)
    path = tmp_path_factory.mktemp("lm")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return HFPolicy(path, batch_size=4)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("img")
    out = []
    for name, size, colour in [("a", (112, 112), "red"), ("b", (140, 84), "blue"), ("c", (112, 112), "green")]:
        Image.new("RGB", size, colour).save(d / f"{name}.png")
        out.append(str(d / f"{name}.png"))
    return out


def _requests(images: list[str], with_images: bool = True) -> list[Request]:
    reqs = []
    for i in range(6):
        problem = Problem(
            id=str(i), question="What is the value of A plus B?" + " Think." * i, answer="1",
            images=[images[i % len(images)]] if with_images else [],
        )
        reqs.append(Request(problem, [f"bar A is {i}", "2 + 3 = 5"][: i % 3]))
    return reqs


def _texts(outs) -> list[str]:
    return [c.text for cs in outs for c in cs]


def test_batched_greedy_equals_one_at_a_time(vlm, images):
    reqs = _requests(images)
    params = SamplingParams(temperature=0, max_tokens=24)
    batched = vlm.sample_batch(reqs, params)
    singles = [vlm.sample_batch([r], params)[0] for r in reqs]
    assert _texts(batched) == _texts(singles)
    assert len(set(_texts(batched))) > 3  # the prompts really steer the output
    assert len({c.prompt_tokens for cs in batched for c in cs}) > 3


def test_prefix_is_continued_and_only_new_text_returned(vlm, images):
    problem = Problem(id="p", question="What is A + B?", answer="5", images=[images[0]])
    prefix = ["bar A is 2", "bar B is 3"]
    params = SamplingParams(temperature=0, max_tokens=16)
    cont = vlm.sample(problem, prefix, params)[0]
    bare = vlm.sample(problem, [], params)[0]

    processor = vlm.processor
    prompt = processor.apply_chat_template(build_messages(problem), tokenize=False, add_generation_prompt=True)
    inputs = processor(text=[prompt + render_steps(prefix)], images=[Image.open(images[0]).convert("RGB")],
                       return_tensors="pt")
    with torch.no_grad():
        out = vlm.model.generate(**inputs, do_sample=False, max_new_tokens=16)
    expected = processor.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert cont.text == expected
    assert cont.prompt_tokens == inputs["input_ids"].shape[1]
    prefix_tokens = len(processor.tokenizer.encode(render_steps(prefix), add_special_tokens=False))
    assert cont.prompt_tokens == bare.prompt_tokens + prefix_tokens
    assert not any(s in prefix for s in cont.steps)


def test_steps_and_answer_are_parsed_from_the_new_text(vlm, images, monkeypatch):
    from mmprm.policy import engine

    def scripted(self, row):
        return engine.GeneratedText("<step>3 + 4 = 7</step>\n<answer>7</answer>", 10, 12, "stop")

    monkeypatch.setattr(engine.ContinuousBatcher, "_result", scripted)
    problem = Problem(id="p", question="A + B?", answer="7", images=[images[0]])
    c = vlm.sample(problem, ["bar A is 3", "bar B is 4"], SamplingParams(temperature=0))[0]
    assert (c.steps, c.answer, c.finished) == (["3 + 4 = 7"], "7", True)


def test_seed_makes_sampling_reproducible_and_leaves_global_rng_alone(vlm, images):
    reqs = _requests(images)[:3]
    params = SamplingParams(n=3, temperature=1.0, max_tokens=16, seed=7)
    state = torch.get_rng_state()
    a = _texts(vlm.sample_batch(reqs, params))
    assert torch.equal(state, torch.get_rng_state())
    assert a == _texts(vlm.sample_batch(reqs, params))
    params.seed = 8
    assert a != _texts(vlm.sample_batch(reqs, params))
    assert len(set(a)) > 3  # samples differ (this model is peaked: two of three samples often agree)


def test_top_k_1_is_greedy_and_max_tokens_and_stop_strings_end_generation(vlm, images):
    reqs = _requests(images)[:3]
    greedy = vlm.sample_batch(reqs, SamplingParams(temperature=0, max_tokens=20))
    top1 = SamplingParams(temperature=1.5, top_k=1, max_tokens=20, seed=1)
    assert _texts(vlm.sample_batch(reqs, top1)) == _texts(greedy)
    for cs in greedy:
        c = cs[0]
        assert c.completion_tokens == 20 and not c.finished

    text = greedy[0][0].text
    stop = text[6:9]
    stopped = vlm.sample_batch(reqs[:1], SamplingParams(temperature=0, max_tokens=20, stop=[stop]))[0][0]
    assert stopped.text == text[: text.find(stop)]
    assert not stopped.finished and stopped.completion_tokens < 20
    raw = vlm.generate_messages([build_messages(reqs[0].problem)], SamplingParams(temperature=0, max_tokens=20,
                                                                                  stop=[stop]),
                                continue_final_message=True)[0][0]
    assert (raw.finish_reason, raw.stop_reason) == ("stop", stop)


def test_greedy_with_n_returns_n_copies(vlm, images):
    outs = vlm.sample_batch(_requests(images)[:2], SamplingParams(n=3, temperature=0, max_tokens=8))
    assert [len(cs) for cs in outs] == [3, 3]
    assert all(len({c.text for c in cs}) == 1 for cs in outs)


def test_image_paths_data_uris_and_openai_parts_give_the_same_output(vlm, images):
    uri = "data:image/png;base64," + base64.b64encode(Path(images[1]).read_bytes()).decode()
    params = SamplingParams(temperature=0, max_tokens=12)

    def chat(part):
        return [[{"role": "user", "content": [part, {"type": "text", "text": "What is A?"}]}]]

    by_path = vlm.generate_messages(chat({"type": "image", "image": images[1]}), params, continue_final_message=False)
    by_uri = vlm.generate_messages(chat({"type": "image", "image": uri}), params, continue_final_message=False)
    by_url = vlm.generate_messages(chat({"type": "image_url", "image_url": {"url": uri}}), params,
                                   continue_final_message=False)
    other = vlm.generate_messages(chat({"type": "image", "image": images[0]}), params, continue_final_message=False)
    assert by_path[0][0].text == by_uri[0][0].text == by_url[0][0].text
    assert by_path[0][0].text != other[0][0].text  # the image reaches the model


def test_unreadable_image_is_a_clear_error(vlm, tmp_path):
    problem = Problem(id="p", question="A?", answer="1", images=[str(tmp_path / "missing.png")])
    with pytest.raises(ValueError, match="cannot open image"):
        vlm.sample(problem, [], SamplingParams(max_tokens=4))


def test_text_only_causal_lm(text_lm, images):
    reqs = _requests(images, with_images=False)
    params = SamplingParams(temperature=0, max_tokens=16)
    batched = text_lm.sample_batch(reqs, params)
    assert _texts(batched) == _texts([text_lm.sample_batch([r], params)[0] for r in reqs])
    assert len(set(_texts(batched))) > 3
    sampled = text_lm.sample_batch(reqs[:2], SamplingParams(n=2, temperature=1.0, max_tokens=8, seed=0))
    assert [len(cs) for cs in sampled] == [2, 2]
    assert all(c.prompt_tokens > 0 and c.completion_tokens > 0 for cs in sampled for c in cs)
    raw = text_lm.generate_text(["Question: 2 + 3?\nSolution:\n"], SamplingParams(n=2, temperature=0, max_tokens=5))
    assert [g.completion_tokens for g in raw[0]] == [5, 5]


def test_images_with_a_text_only_model_are_refused(text_lm, images):
    problem = Problem(id="p", question="A?", answer="1", images=[images[0]])
    with pytest.raises(ValueError, match="text-only model"):
        text_lm.sample(problem, [], SamplingParams(max_tokens=4))


def test_a_requests_samples_depend_on_its_seed_alone_not_on_the_batch(vlm, images):
    """What resuming relies on: the same request, seeded, alone or among others, in any order."""
    reqs = [Request(r.problem, r.prefix_steps, seed=100 + i) for i, r in enumerate(_requests(images))]
    params = SamplingParams(n=2, temperature=1.0, max_tokens=16)
    together = vlm.sample_batch(reqs, params)
    alone = [vlm.sample_batch([r], params)[0] for r in reqs[::2]]
    reordered = vlm.sample_batch(reqs[::-1], params)[::-1]
    assert [[c.text for c in cs] for cs in together[::2]] == [[c.text for c in cs] for cs in alone]
    assert _texts(reordered) == _texts(together)
    assert len(set(_texts(together))) > 6  # the seeds do make the samples differ


def test_the_row_sampler_draws_from_the_tempered_and_filtered_distribution():
    from mmprm.policy.sampling import choose_tokens

    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, -3.0]])
    draws = 4000

    def frequencies(params):
        rows = [SimpleNamespace(generator=torch.Generator().manual_seed(s), job=SimpleNamespace(params=params))
                for s in range(draws)]
        picks = choose_tokens(logits.expand(draws, -1), rows)
        return torch.bincount(picks, minlength=5).float() / draws

    plain = frequencies(SamplingParams(temperature=1.0))
    assert torch.allclose(plain, logits[0].softmax(-1), atol=0.03)
    hot = frequencies(SamplingParams(temperature=2.0))
    assert torch.allclose(hot, (logits[0] / 2).softmax(-1), atol=0.03)
    top2 = frequencies(SamplingParams(temperature=1.0, top_k=2))
    assert torch.allclose(top2, torch.tensor([2.0, 1.0, -1e9, -1e9, -1e9]).softmax(-1), atol=0.03)
    nucleus = frequencies(SamplingParams(temperature=1.0, top_p=0.8))  # 0.64 + 0.24 reaches 0.8: two tokens
    assert nucleus[2:].sum() == 0 and torch.allclose(nucleus[:2], logits[0, :2].softmax(-1), atol=0.03)


def test_empty_prompts_and_empty_stop_strings_are_refused(text_lm):
    with pytest.raises(ValueError, match="prompt is empty"):
        text_lm.generate_text([""], SamplingParams(max_tokens=4))
    with pytest.raises(ValueError, match="stop strings"):
        SamplingParams(stop=[""]).check()


def test_a_rows_top_p_filter_does_not_depend_on_its_neighbours():
    from mmprm.policy.sampling import filtered_logits

    logits = torch.randn(2, 32000, generator=torch.Generator().manual_seed(0)) * 4
    plain, nucleus = SamplingParams(temperature=1.0), SamplingParams(temperature=1.0, top_p=0.5)
    together = filtered_logits(logits, [plain, nucleus])
    assert torch.isfinite(together[0]).all()  # the top_p = 1 row keeps every token
    assert torch.equal(together[0], filtered_logits(logits[:1], [plain])[0])
    assert torch.isinf(together[1]).sum() > 30000  # the other row is filtered
