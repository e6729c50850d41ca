"""Baselines for the review task, computed in the same run as the model they judge."""

from __future__ import annotations

from collections import Counter


def majority_accuracy(train_labels: list[int], test_labels: list[int]) -> float:
    """Accuracy of always answering the most common training label."""
    majority = Counter(train_labels).most_common(1)[0][0]
    return sum(label == majority for label in test_labels) / len(test_labels)


def tfidf_logistic_accuracy(train_texts, train_labels, test_texts, test_labels) -> float:
    """TF-IDF of words and word pairs, then logistic regression: the classic strong text baseline."""
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        raise ImportError(
            'the TF-IDF baseline needs scikit-learn: pip install "gated[baselines]" (or pip install scikit-learn)'
        ) from None
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    features = vectorizer.fit_transform(train_texts)
    classifier = LogisticRegression(C=10.0, max_iter=2000).fit(features, train_labels)
    return float((classifier.predict(vectorizer.transform(test_texts)) == test_labels).mean())
