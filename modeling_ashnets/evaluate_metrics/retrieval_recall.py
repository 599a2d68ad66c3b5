"""Image-text retrieval recall@K in both directions as a local 🤗 evaluate metric:
`evaluate.load(metric_path("retrieval_recall"))`."""

import datasets
import evaluate

from modeling_ashnets.metrics import retrieval_recall_at_k


class RetrievalRecall(evaluate.Metric):
    """R@1/5/10 for image->text ("tr_r@K") and text->image ("ir_r@K") retrieval, and their mean ("r_mean").

    One example per image: `predictions` is the image's row of the (images x texts) similarity matrix, `references`
    the indices of its own captions among the texts.
    """

    def _info(self):
        return evaluate.MetricInfo(
            description=self.__doc__,
            citation="Karpathy and Fei-Fei, Deep Visual-Semantic Alignments, CVPR 2015 (the splits and protocol).",
            inputs_description="predictions: similarities of one image to every text; references: its captions' indices.",
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("float32")),
                    "references": datasets.Sequence(datasets.Value("int64")),
                }
            ),
        )

    def _compute(self, predictions, references, ks=(1, 5, 10)):
        num_texts = len(predictions[0]) if predictions else 0
        text_to_image = [-1] * num_texts
        for image, captions in enumerate(references):
            for text in captions:
                if not 0 <= text < num_texts or text_to_image[text] != -1:
                    raise ValueError(f"Caption index {text} is out of range or belongs to two images.")
                text_to_image[text] = image
        if -1 in text_to_image:
            raise ValueError(f"Text {text_to_image.index(-1)} belongs to no image: every text needs its image.")
        return retrieval_recall_at_k(predictions, text_to_image, ks=ks)
