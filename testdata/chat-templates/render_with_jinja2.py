"""Renders chat templates with Python's Jinja2 set up exactly as transformers' apply_chat_template sets it up
(ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, its tojson, raise_exception and
strftime_now), and writes jinja2_renderings.json: the goldens ChatTemplateJinja2ParityTest holds our Jinjava setup to.

    python3 testdata/chat-templates/render_with_jinja2.py     # Jinja2 3.x (Debian: python3-jinja2)

The templates are those of well-known chat models (written out here, so nothing is downloaded), plus one expression
per Python-ism templates use: str methods, negative indexes, slices with a step, namespace(), tojson, loop controls,
loop filters and else, loop.previtem / nextitem, and/%/*, chained comparisons, tests after filters, filter blocks,
values printed as Python prints them. Not covered, because Jinjava does them its own way: None printed bare (Jinja2
prints "None", Jinjava nothing: it cannot tell None from undefined, which prints nothing), an undefined attribute
tested with `is none` (Jinjava has no undefined: it is none), and %g / %(name)s in `%` formatting.
"""
import json
import os
from datetime import datetime

from jinja2.exceptions import TemplateError
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

T = {}
T["llama2"] = "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"
T["llama3"] = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
T["llama31"] = """{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message + builtin tools #}
{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\\n" }}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\\n" }}
{{- "Today Date: " + date_string + "\\n\\n" }}
{{- system_message }}
{{- "<|eot_id|>" }}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}
"""
T["mistral"] = "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
T["chatml"] = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
T["gemma"] = "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}"
T["zephyr"] = "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"
T["qwen_ns"] = """{%- set ns = namespace(found=false, count=0) -%}
{%- for message in messages -%}
    {%- if message['role'] == 'system' -%}
        {%- set ns.found = true -%}
    {%- endif -%}
    {%- set ns.count = ns.count + 1 -%}
{%- endfor -%}
{%- if not ns.found -%}
{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' -}}
{%- endif %}
{%- for message in messages %}
{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}
{%- endfor %}
{%- if add_generation_prompt %}
{{- '<|im_start|>assistant\\n' }}
{%- endif %}
{{- '<!-- ' ~ ns.count ~ ' -->' if ns.count > 2 else '' }}"""
T["deepseek_split"] = "{% for message in messages %}{% if message['role'] == 'assistant' %}{% set content = message['content'] %}{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}{{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}}{% elif message['role'] == 'user' %}{{'<｜User｜>' + message['content']}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{'<｜Assistant｜><think>\\n'}}{% endif %}"
# Qwen3's way of finding the last real user turn (walking the conversation backwards with [::-1]) and of keeping
# reasoning only after it; written out here in its structure, not byte for byte.
T["qwen3_style"] = """{%- if messages[0].role == 'system' %}
    {{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
        {%- set ns.multi_step_tool = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- set content = message.content if message.content is string else '' %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {%- set reasoning_content = '' %}
        {%- if '</think>' in content %}
            {%- set reasoning_content = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}
            {%- set content = content.split('</think>')[-1].lstrip('\\n') %}
        {%- endif %}
        {%- if loop.index0 > ns.last_query_index and (loop.last or reasoning_content) %}
            {{- '<|im_start|>' + message.role + '\\n<think>\\n' + reasoning_content.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n') }}
        {%- else %}
            {{- '<|im_start|>' + message.role + '\\n' + content }}
        {%- endif %}
        {{- '<|im_end|>\\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\\n\\n</think>\\n\\n' }}
    {%- endif %}
{%- endif %}"""
# Jinja2's loop filter and else, and loop.previtem / nextitem.
T["filtered_loop"] = """{% for m in messages if m.role != 'system' %}
{% if loop.previtem is defined %}[after {{ loop.previtem.role }}]{% endif %}{{ loop.index }}/{{ loop.length }} {{ m.role }}: {{ m.content | trim }}
{% if loop.nextitem is defined %}(then {{ loop.nextitem.role }})
{% endif %}
{% else %}
(no turns)
{% endfor %}"""
T["phi3"] = "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\\n' + message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\\n' + message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\\n' + message['content'] + '<|end|>\\n'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}"

EXPRESSIONS = [
    "{{ messages|length }}|{{ messages[-1]['role'] }}|{{ messages[0].content|upper }}",
    "{{ messages[0]['content'].upper() }}|{{ messages[0]['content'].lower() }}|{{ messages[0]['content'].title() }}",
    "{{ 'y' if messages[0]['content'].startswith('Hi') else 'n' }}|{{ 'y' if messages[1]['content'].endswith('! ') else 'n' }}|{{ 'a' if messages[0]['content'].startswith(('x', 'Y')) else 'b' }}",
    "[{{ messages[0]['content'].strip() }}][{{ messages[0]['content'].lstrip() }}][{{ messages[0]['content'].rstrip() }}][{{ messages[1]['content'].strip(' !H') }}]",
    "{{ messages[0]['content'].split(' ') }}|{{ messages[0]['content'].split('.')[0] }}|{{ 'a|b'.split('|')[1] }}|{{ ' a  b '.split() }}|{{ 'a,b,,c'.split(',', 2) }}",
    "{{ messages[0]['content'].replace('o', '0') }}|{{ 'xx'.replace('x', 'y', 1) }}|{{ messages[0]['content'].count('o') }}|{{ messages[0]['content'].find('k') }}",
    "{{ '  '.join(['a', 'b']) }}|{{ '-'.join(['', 'a']) }}|{{ messages | map(attribute='role') | join(',') }}|{{ messages | selectattr('role', 'equalto', 'user') | list | length }}",
    "{% for m in messages %}{% if loop.index > 1 %}{% break %}{% endif %}{{ loop.index }}{{ loop.length }}{{ loop.revindex }}{% endfor %}|{{ 'abc'[1:] }}|{{ 3 // 2 }}|{{ 7 % 3 }}",
    "{{ {'a': 1, 'b': 'x y', 'c': [1, 2]} | tojson }}|{{ messages[0] | tojson }}|{{ [] | tojson }}|{{ {} | tojson(indent=2) }}",
    "{{ {'a': [1, {'b': 2}], 'c': [], 'd': 'ü'} | tojson(indent=2) }}|{{ messages | tojson }}",
    "{% for k, v in messages[0].items() %}{{ k }}={{ v }};{% endfor %}|{% for k in messages[0] %}{{ k }};{% endfor %}|{{ messages[0].get('name', 'none') }}",
    "{% if messages[0]['tool_calls'] is defined %}T{% else %}F{% endif %}|{{ (messages | last).role }}|{{ messages[0]['content'] | capitalize }}",
    "{% if strftime_now is defined %}{{ strftime_now('%d %b %Y') | length }}{% endif %}|{{ raise_exception('not like this') if messages | length > 5 }}",
    "{% generation %}kept{% endgeneration %}",
    "{% for m in messages[::-1] %}{{ m.role }},{{ loop.index0 }};{% endfor %}|{{ messages[1:-1] | length }}|{{ messages[-1:][0].role }}|{{ [1, 2, 3, 4, 5][4:0:-2] }}|{{ [1, 2, 3][::2] }}|{{ [1, 2, 3][-10:10] }}",
    "{{ messages[0].content[0] }}|{{ messages[0].content[-1] }}|{{ messages[0].content[1:4] }}|{{ messages[0].content[::-1] }}|[{{ 'ab'[5] }}]|{{ '日本語'[1] }}{{ '日本語'[::-1] }}",
    "{% for m in messages %}{% if not loop.first %}{{ loop.previtem.role }}{% endif %}>{% if not loop.last %}{{ loop.nextitem.role }}{% endif %};{% endfor %}",
    "{% for m in messages if m.role != 'system' %}{{ loop.index }}:{{ m.role }}{{ loop.length }};{% endfor %}|{% for m in [] %}x{% else %}empty{% endfor %}|{% for m in messages %}{{ m.role }}{% else %}none{% endfor %}",
    "{% for k, v in messages[0].items() if k != 'role' %}{{ k }}={{ v | trim }}{% endfor %}|{% for m in messages if m.role == 'nobody' %}x{% else %}filtered out{% endfor %}",
    "{{ 'a b c'.rsplit(' ', 1) }}|{{ 'a b c'.rsplit() }}|{{ messages[0].content.index('k') }}|{{ 'a\\nb\\r\\nc'.splitlines() }}|{{ messages[0].content.rindex('e') }}",
    "{{ 'Hello {}!'.format(messages[0].role) }}|{{ '%d items'|format(3) }}|{{ 1 / 2 }}|{{ 10 // 3 }}|{{ 2 ** 3 }}|{{ messages | map(attribute='content') | map('trim') | join('|') }}",
    "{% set x = [1, 2, 3, 4, 5] %}{{ x[::-2] }}{{ x[-1:-4:-1] }}{{ x[10:] }}{{ x[:-10] }}{{ x[None:2] }}{{ x[1::3] }}{{ x[-2:] }}{{ x[4:1] }}{{ x[3::-1] }}{{ x[-10::-1] }}|{{ 'héllo'[1:4:2] }}",
    "{% set ns = namespace(last=messages|length - 1, who=messages[5] or 'nobody', kind='sys' if messages[0].role == 'system' else 'user', n=2 * 3 + 1,) %}{{ ns.last }}|{{ ns.who }}|{{ ns.kind }}|{{ ns.n }}|{{ [1, 2,] }}|{{ messages | tojson(indent=1 + 1) }}",
    "{{ messages[0].role and messages[0].role ~ ': ' }}|{{ '' and 'x' }}|{{ 'n' if (none and 'x') is none else 'v' }}|{{ 0 and 1 }}|{{ 'ab' * 3 }}|{{ 2 * '-' }}|{{ [1, 2] * 2 }}|{{ 3 * 4 }}|{{ 2.5 * 2 }}",
    "{{ '<|%s|>' % messages[0].role }}|{{ '%s=%d' % ('n', 3) }}|{{ '%5.2f|%-4s|%04d|%x|%r|%%' % (3.14159, 'ab', 42, 255, 'q') }}|{{ -7 % 3 }}|{{ 7 % -3 }}|{{ 7.5 % 2 }}|{{ loop_free if false else 10 % 4 }}|{{ '%s' % [1, 'a'] }}|{{ '%.3s' % 'abcdef' }}|{{ '%d' % 3.9 }}",
    r"""{{ true }}|{{ false }}|{{ [true, none, 1.5, 'it\'s', "q\"", 'a\nb', 'tab\there', 'é'] }}|{{ {'a': true, 'b': [none]} }}|{{ 'role' in messages[0] }}|{{ messages[0].content.startswith('You') }}|{{ 'ab' | list }}|{{ '%r' % 'x' }}|{{ '%s' % true }}|{{ messages[0] }}""",
    "{% filter upper %}{{ messages[0].role }} x{% endfilter %}|{% filter replace('o', '0') | trim %} {{ messages[1].content }} {% endfilter %}|{{ 1 < messages|length < 5 }}|{{ 3 > 2 > 1 }}|{{ 1 < 2 > 3 }}|{{ 'y' if 0 <= messages|length - 2 < 1 else 'n' }}",
    "{{ messages | length is even }}|{{ messages | length is not divisibleby 3 }}|{{ messages | map(attribute='role') | list is sequence }}|{% if messages | selectattr('role', 'equalto', 'tool') | list | length is odd %}T{% else %}F{% endif %}",
    "{% macro turn(m) %}<{{ m.role }}>{{ m.content | trim }}</{{ m.role }}>{% endmacro %}{% for m in messages %}{{ turn(m) }}{% endfor %}|{% for i in range(3) %}{{ i }}{% endfor %}",
]
for i, e in enumerate(EXPRESSIONS):
    T["python-%02d" % i] = e

MESSAGES = {
    "system-user": [{"role": "system", "content": "You are kind. "}, {"role": "user", "content": " Hi there! "}],
    "three-turns": [{"role": "user", "content": "Hello!"},
                    {"role": "assistant", "content": "<think>hmm</think> Hi, how can I help?"},
                    {"role": "user", "content": "Tell me a joke\nplease"}],
    "roles-not-alternating": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
    "unicode": [{"role": "user", "content": "héllo wörld ✓ 日本語 \"quoted\" back\\slash"}],
    "reasoning-last": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"},
                       {"role": "assistant", "content": "<think>\nadd them\n</think>\n\n4"}],
    "template-syntax-in-text": [{"role": "user", "content": "{{ 7*7 }} {% if true %}x{% endif %} {# c #} {{ raise_exception('no') }}"}],
}


def raise_exception(message):
    raise TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(format):
    return datetime.now().strftime(format)


class AssistantTracker(__import__("jinja2").ext.Extension):
    """transformers' {% generation %} block: renders its body (and marks it as the assistant's, unused here)."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return __import__("jinja2").nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[AssistantTracker, loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
env.globals["strftime_now"] = strftime_now
cases = []
for name, source in T.items():
    for messages_name, messages in MESSAGES.items():
        if name.startswith("python-") and messages_name != "system-user":
            continue
        for add_generation_prompt in (True, False):
            case = {"template": name, "messages_name": messages_name, "add_generation_prompt": add_generation_prompt,
                    "source": source, "messages": messages}
            try:
                case["rendered"] = env.from_string(source).render(
                    messages=messages, add_generation_prompt=add_generation_prompt, bos_token="<s>", eos_token="</s>")
            except TemplateError as e:
                case["error"] = str(e)
            cases.append(case)
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "jinja2_renderings.json")
with open(out, "w", encoding="utf-8") as f:
    json.dump(cases, f, ensure_ascii=False, indent=1)
print(f"{len(cases)} cases ({sum('error' in c for c in cases)} raise) -> {out}")
