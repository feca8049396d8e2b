"""The start-up hook (``convnext_dense_mim``) fails soft: an mmengine without what a patch changes still imports,
that patch alone is skipped, and one warning names it and the switch that turns the hook off.

Each case runs in a fresh process that starts with the hook off (``CONVNEXT_DENSE_NO_MIM_HOOK=1``, so an installed
copy does nothing), then loads this checkout's ``convnext_dense_mim.py`` (which installs itself) and imports
mmengine's config modules; the process prints what was patched and the hook's warnings. What the patches do to a
config is ``tests/test_packaging.py``'s.
"""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO

DISABLE = 'CONVNEXT_DENSE_NO_MIM_HOOK'
TARGET = 'mmengine.config.config.Config._dict_to_config_dict'

PRELUDE = r'''
import importlib.util, json, os, sys, warnings
hook_file, enabled = sys.argv[1:3]
caught = []
warnings.showwarning = lambda message, category, *args, **kwargs: caught.append(f'{category.__name__}: {message}')


def load_hook():
    """This checkout's hook, as its .pth imports it at start-up (the module installs itself)."""
    if enabled:
        os.environ.pop('CONVNEXT_DENSE_NO_MIM_HOOK')
    spec = importlib.util.spec_from_file_location('convnext_dense_mim', hook_file)
    module = sys.modules['convnext_dense_mim'] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
'''
REPORT = r'''
import mmengine.config
config, utils = sys.modules['mmengine.config.config'], sys.modules['mmengine.config.utils']
method = vars(config.Config).get('_dict_to_config_dict')
print(json.dumps(dict(
    warnings=[w for w in caught if 'convnext_dense_mim' in w],
    registered='convnext_dense' in utils.MODULE2PACKAGE,
    installed_path=getattr(sys.modules['mmengine.utils'].get_installed_path, '_convnext_dense', False),
    untagged=getattr(getattr(method, '__func__', None), '_convnext_dense', False),
    finder=any(type(finder).__name__ == '_Finder' for finder in sys.meta_path))))
'''
# mmengine without Config._dict_to_config_dict: the name goes right after mmengine.config.config has run, before
# the hook's patch of that module runs (the real loader is wrapped, the hook's _Loader calls it)
RENAMED = r'''
from importlib.machinery import SourceFileLoader
real_exec_module = SourceFileLoader.exec_module


def exec_module(self, module):
    real_exec_module(self, module)
    if module.__name__ == 'mmengine.config.config':
        del module.Config._dict_to_config_dict


SourceFileLoader.exec_module = exec_module
hook = load_hook()
import mmengine.config  # the patch fails inside this import
hook.install()  # again, as a second copy of the hook would: no second warning
'''


def child(body: str, *, enabled: bool = True, warnings_filter: str = 'default') -> tuple:
    """Run PRELUDE + ``body`` + REPORT in a fresh process; (its report, its stderr)."""
    code = PRELUDE + textwrap.dedent(body) + REPORT
    out = subprocess.run([sys.executable, '-W', f'{warnings_filter}::RuntimeWarning', '-c', code,
                          str(REPO / 'convnext_dense_mim.py'), '1' if enabled else ''],
                         capture_output=True, text=True, timeout=300, env=dict(os.environ, **{DISABLE: '1'}))
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr


def test_normal_path_patches_everything_without_a_warning():
    report, _ = child('load_hook()')
    assert report == dict(warnings=[], registered=True, installed_path=True, untagged=True, finder=True)


def test_the_switch_patches_nothing():
    report, _ = child('load_hook()', enabled=False)
    assert report == dict(warnings=[], registered=False, installed_path=False, untagged=False, finder=False)


def test_a_renamed_private_method_leaves_the_import_working_and_warns_once():
    report, _ = child(RENAMED, warnings_filter='always')  # a repeat would show: the hook itself warns once
    assert len(report['warnings']) == 1, report['warnings']
    warning = report['warnings'][0]
    assert warning.startswith('RuntimeWarning: ') and TARGET in warning and 'AttributeError' in warning, warning
    assert f'{DISABLE}=1' in warning, warning
    assert report['registered'] and report['installed_path'] and report['finder'], report  # the other patches
    assert not report['untagged']


def test_with_warnings_as_errors_the_import_still_works():
    """``-W error``: the warning cannot be raised inside mmengine's import; it is printed instead."""
    report, stderr = child(RENAMED, warnings_filter='error')
    assert report['warnings'] == [] and report['registered'] and report['installed_path']
    lines = [line for line in stderr.splitlines() if 'convnext_dense_mim: did not patch' in line]
    assert len(lines) == 1 and TARGET in lines[0] and f'{DISABLE}=1' in lines[0], stderr[-3000:]


@pytest.mark.parametrize('signature, parameters', [('cfg, scopes=None, has_scope=True', 'cfg, scopes, has_scope'),
                                                   ('cfg', 'cfg')])
def test_a_changed_signature_is_not_patched(signature, parameters):
    """Installed after mmengine was imported (``install()`` patches what is already there), with another method."""
    report, _ = child(f'''
        import mmengine.config
        sys.modules['mmengine.config.config'].Config._dict_to_config_dict = staticmethod(lambda {signature}: cfg)
        load_hook()
    ''')
    assert len(report['warnings']) == 1, report['warnings']
    warning = report['warnings'][0]
    assert TARGET in warning and f'TypeError: its parameters are ({parameters})' in warning, warning
    assert report['registered'] and report['installed_path'] and not report['untagged'], report
