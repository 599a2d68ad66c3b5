"""Classification accuracy (visual entailment, NLVR2) as a local 🤗 evaluate metric, which needs no download:
`evaluate.load(metric_path("classification_accuracy"))`."""

import datasets
import evaluate

from modeling_ashnets.metrics import accuracy


class ClassificationAccuracy(evaluate.Metric):
    """Fraction of predicted class ids equal to the reference class ids."""

    def _info(self):
        return evaluate.MetricInfo(
            description=self.__doc__,
            citation="",
            inputs_description="predictions and references: integer class ids.",
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references):
        return {"accuracy": accuracy(predictions, references)}
