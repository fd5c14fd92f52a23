# ui/ui.mk: the web UI compiled into the binary (included by the Makefile
# right after LIB_OBJ is set). ui/embed.py (Debian's python3, standard
# library only, offline) writes $(BUILD)/ui/ui_assets_data.c from the files
# below; worker/ui_assets.c looks them up. The generated file is a build
# output: never committed.
UI_FILES    := $(sort $(wildcard ui/*.html ui/*.css ui/*.js ui/*.svg))
UI_GEN      := $(BUILD)/ui/ui_assets_data.c
UI_OBJ      := $(BUILD)/obj/ui/ui_assets_data.o
LIB_OBJ     += $(UI_OBJ)

$(UI_GEN): $(UI_FILES) ui/embed.py ui/ui.mk
	@mkdir -p $(@D)
	$(PYTHON) ui/embed.py $@ $(UI_FILES)

# generated data: compiled without -Wextra's pickiness, like the protobuf code
$(UI_OBJ): $(UI_GEN) worker/ui_assets.h
	@mkdir -p $(@D)
	$(CC) $(filter-out -Werror -Wextra,$(CFLAGS)) -c $< -o $@

.PHONY: ui-size
ui-size: $(UI_GEN)  ## bytes of the embedded UI
	@wc -c $(UI_FILES)

# docs/ui-*.png: the three views at desktop width, taken by the browser tests
.PHONY: ui-screenshots
ui-screenshots: all
	LOCKD_BIN=$(abspath $(BUILD)/lockd) LOCKD_UI_SCREENSHOTS=$(abspath docs) \
	    $(PYTHON) -m pytest -q -p no:cacheprovider tests/blackbox/test_ui.py -k 'screenshot or every_field or three_nodes or queue'
