"""Task generators and graders shared by the classifier pipeline and the lab model pair.

Every record has the same shape (:class:`TaskRecord`); splits are fixed by a hash of the question
so no question is ever in two splits.
"""

from tandem.datasets.graders import ANSWER_GRADERS, GRADERS, extract_answer, grade, grade_answer
from tandem.datasets.records import Split, TaskRecord, read_jsonl, split_of, write_jsonl
from tandem.datasets.registry import GENERATORS, generate

__all__ = [
    "ANSWER_GRADERS",
    "GENERATORS",
    "GRADERS",
    "Split",
    "TaskRecord",
    "extract_answer",
    "generate",
    "grade",
    "grade_answer",
    "read_jsonl",
    "split_of",
    "write_jsonl",
]
