"""Answer extraction and grading: rules with math-verify, an LLM judge, both."""

from mmprm.grading.equivalence import equivalent
from mmprm.grading.extract import extract_answer, normalize_answer
from mmprm.grading.grader import Grader, HybridGrader, JudgeGrader, RuleGrader, Verdict, load_grader

__all__ = ["Grader", "HybridGrader", "JudgeGrader", "RuleGrader", "Verdict",
           "equivalent", "extract_answer", "load_grader", "normalize_answer"]
