"""What several test modules share; test modules import from here, never from each other.

* :mod:`tests.helpers.settings`: the tiniest real settings (loop, CLI, per backend);
* :mod:`tests.helpers.fakes`: the one fake backend and the strategy contexts built on it;
* :mod:`tests.helpers.runs`: crash-and-resume of a real run, comparable round rows,
  synthetic run folders;
* :mod:`tests.helpers.data`: small COCO files written on the fly, the committed paper fixture;
* :mod:`tests.helpers.naive`: textbook implementations the fast ones are checked against.

Fixtures live in ``tests/conftest.py``, which imports from here.
"""
