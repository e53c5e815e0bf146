from hypothesis import given
from hypothesis import strategies as st

from ekdsl.docstrings import parse_docstring

GOOGLE = '''Summary line
    continues here.

    Longer description.

    Args:
        interval (float): Seconds between
            two rows.
        *parts: Values.

    Returns:
        The result.
    '''

NUMPY = '''Summary.

    Parameters
    ----------
    values : list of float
        The group's
        values.
    other : int

    Returns
    -------
    float
        max - min.
    '''

REST = '''Summary.

    :param sep: The separator.
    :param str name: A name
        on two lines.
    :type name: str
    :returns: The text.
    '''


def test_google():
    doc = parse_docstring(GOOGLE)
    assert doc.summary == "Summary line continues here."
    assert doc.params == {"interval": "Seconds between two rows.", "parts": "Values."}
    assert doc.returns == "The result."


def test_numpy():
    doc = parse_docstring(NUMPY)
    assert doc.summary == "Summary."
    assert doc.params == {"values": "The group's values."}
    assert doc.returns == "max - min."


def test_rest():
    doc = parse_docstring(REST)
    assert doc.summary == "Summary."
    assert doc.params == {"sep": "The separator.", "name": "A name on two lines."}
    assert doc.returns == "The text."


def test_empty_and_plain():
    assert parse_docstring(None).summary == ""
    assert parse_docstring("  One line.  ").summary == "One line."
    assert parse_docstring("One line.").params == {}


@given(st.text())
def test_never_raises(text):
    doc = parse_docstring(text)
    assert isinstance(doc.summary, str)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in doc.params.items())
