"""VQA accuracy as a local 🤗 evaluate metric: `evaluate.load(metric_path("vqa_accuracy"))`."""

import datasets
import evaluate

from modeling_ashnets.metrics import vqa_accuracy


class VqaAccuracy(evaluate.Metric):
    """Official VQA accuracy: each prediction scores min(#human answers matching / 3, 1), averaged over the ten
    leave-one-annotator-out subsets (exact match when there is one human answer)."""

    def _info(self):
        return evaluate.MetricInfo(
            description=self.__doc__,
            citation="Antol et al., VQA: Visual Question Answering, ICCV 2015.",
            inputs_description="predictions: answer strings; references: the list of human answers of each question.",
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Sequence(datasets.Value("string"))}
            ),
        )

    def _compute(self, predictions, references):
        return {"vqa_accuracy": vqa_accuracy(predictions, references)}
