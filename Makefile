# Qianmian — every setup step lives here (a fresh machine has only what the image ships).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
PG_URL ?= postgres://postgres@127.0.0.1:5432/qianmian
REDIS_TEST_URL ?= redis://127.0.0.1:6379/15
# Links built outside a request (SMS, reminders, nginx-rtmp callbacks) point where `make run`
# serves: an explicit SITE_URL wins; 0.0.0.0 / :: listen everywhere, loopback reaches them.
LINK_HOST := $(if $(filter 0.0.0.0 :: [::],$(HOST)),127.0.0.1,$(HOST))
SITE_URL ?= http://$(LINK_HOST):$(PORT)
QM_URL ?= $(SITE_URL)
export SITE_URL QM_URL

.PHONY: venv run serve test test-miniprogram test-integration lint audit format bench messages clean system-deps bench-data vendor stream-demo prod chaos

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed messages vendor

messages: $(VENV)/.installed
	@$(PY) manage.py compilemessages -v0 --ignore=.venv

# Browser libraries from the npm registry (package.json), copied into static/vendor/.
node_modules/.installed: package.json
	npm install --no-audit --no-fund --silent --package-lock=false
	touch $@

static/vendor/hls.min.js: node_modules/.installed
	mkdir -p static/vendor
	cp node_modules/hls.js/dist/hls.min.js $@

# ECharts (the 战报 page's charts): the prebuilt browser bundle, loaded as a classic script.
static/vendor/echarts.min.js: node_modules/.installed
	mkdir -p static/vendor
	cp node_modules/echarts/dist/echarts.min.js $@

# jsPDF (the 战报 page's PDF export): its UMD bundle (fflate and fast-png inside), loaded as a
# classic script that sets window.jspdf; its optional html2canvas/canvg/DOMPurify are never used.
static/vendor/jspdf.umd.min.js: node_modules/.installed
	mkdir -p static/vendor
	cp node_modules/jspdf/dist/jspdf.umd.min.js $@

# WeChat's JS-SDK is published on npm as CommonJS: wrapped into a classic script that sets
# window.wx (static/viewer/wechat.js loads it inside WeChat only).
static/vendor/jweixin.js: node_modules/.installed
	mkdir -p static/vendor
	{ echo '(function () { var module = {};'; cat node_modules/weixin-js-sdk/index.js; \
	  echo 'window.wx = window.jWeixin = module.exports; })();'; } > $@

vendor: static/vendor/hls.min.js static/vendor/echarts.min.js static/vendor/jspdf.umd.min.js \
	static/vendor/jweixin.js

# nginx-rtmp on free non-root ports with its own prefix, and ffmpeg's test source pushed
# into the demo room (run `make run` in another terminal first).
# Debian packages per target: installed when root, else the apt command is printed (exit 1).
# The fast tier (`make test`), `make run` and posters need none of them.
MEDIA_DEBS := nginx libnginx-mod-rtmp ffmpeg
BROWSER_DEBS := chromium fonts-noto-cjk poppler-utils

stream-demo: venv
	@deploy/need-debian.sh "make stream-demo" $(MEDIA_DEBS)
	$(PY) -m livecommerce.media.stream_demo

# Everything the integration tier uses: the media path and the browser tests (root on CI).
system-deps:
	@deploy/need-debian.sh "make system-deps" $(MEDIA_DEBS) $(BROWSER_DEBS) gettext

run: venv
	mkdir -p var
	$(PY) manage.py migrate -v0
	$(PY) manage.py seed_demo
	@echo "Qianmian on http://$(HOST):$(PORT)/  (Ctrl-C stops the server and its background tasks)"
	exec $(VENV)/bin/uvicorn qianmian.asgi:application --host $(HOST) --port $(PORT) \
		--ws core.websocket:WebSocketProtocol --ws-max-size 65536 --lifespan on --no-access-log

# The production layout on one machine, in the foreground (README "Production on one
# machine"): nginx on PORT (8080 unless given) in front of ASGI_PROCS uvicorn processes, a
# Celery worker and beat under supervisord, on DATABASE_URL and REDIS_URL (core/prod.py).
# PORT defaults to 8080 here (8000 stays make run's); SITE_URL above follows it.
prod: PORT := $(if $(filter file undefined,$(origin PORT)),8080,$(PORT))
PROD_REDIS_URL ?= redis://127.0.0.1:6379/0

prod: venv
	@command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || { \
	  echo "make prod needs nginx: run 'apt-get install -y nginx' (as root), then retry"; exit 1; }
	DATABASE_URL=$${DATABASE_URL:-$(PG_URL)} REDIS_URL=$${REDIS_URL:-$(PROD_REDIS_URL)} \
	  HOST=$(HOST) PORT=$(PORT) exec $(PY) -m core.prod

test: venv
	DJANGO_ENV=test $(VENV)/bin/pytest -m "not integration and not browser and not miniprogram"

# The WeChat mini-program (miniprogram/, README "Mini-program"): jest + miniprogram-simulate
# from the npm registry at the versions in its package-lock.json.
miniprogram/node_modules/.installed: miniprogram/package.json miniprogram/package-lock.json
	cd miniprogram && npm ci --no-audit --no-fund --silent
	touch $@

# ...then the contract test: the client's API/WebSocket module in Node against the served demo.
test-miniprogram: venv miniprogram/node_modules/.installed
	cd miniprogram && npx jest --ci
	DJANGO_ENV=test $(VENV)/bin/pytest -m miniprogram tests/miniprogram

test-integration: venv
	@deploy/need-debian.sh "make test-integration" $(MEDIA_DEBS) $(BROWSER_DEBS)
	DJANGO_ENV=test QM_TIER=integration DATABASE_URL=$${DATABASE_URL:-$(PG_URL)} \
	  REDIS_URL=$${REDIS_URL:-$(REDIS_TEST_URL)} $(VENV)/bin/pytest -m "not miniprogram" --durations=25

# The fault suite against `make prod` on private PostgreSQL/Redis (tests/integration/
# test_prod_layout.py) with CHAOS_TRIALS trials per fault; one JSON line per trial goes to
# var/chaos.jsonl (figures for docs/security.md). make test-integration runs one trial each.
CHAOS_TRIALS ?= 10
chaos: venv
	mkdir -p var
	DJANGO_ENV=test QM_TIER=integration DATABASE_URL=$${DATABASE_URL:-$(PG_URL)} \
	  REDIS_URL=$${REDIS_URL:-$(REDIS_TEST_URL)} CHAOS_TRIALS=$(CHAOS_TRIALS) \
	  CHAOS_REPORT=$(CURDIR)/var/chaos.jsonl $(VENV)/bin/pytest -s tests/integration/test_prod_layout.py

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

# Known vulnerabilities in the pinned requirements (PyPI's advisory data, docs/security.md).
# --strict: a requirement that could not be audited fails the run instead of passing unseen.
audit: venv
	$(VENV)/bin/pip-audit --strict --progress-spinner off -r requirements.txt -r requirements-dev.txt

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: venv
	$(PY) -m bench

# The scale ladder's data (docs/bench/scale.md): SCALE leads (10k, 100k, 1m, 10m) with 10
# events each, COPYed into BENCH_DATA_URL's database (dropped and created first); the timings
# and sizes on disk go to var/bench/data-<scale>-<time>.json.
SCALE ?= 1m
bench-data: venv
	nice $(PY) -m bench.data --scale $(SCALE)

clean:
	rm -rf $(VENV) var static/vendor node_modules miniprogram/node_modules
