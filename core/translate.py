"""Translators: source sentences -> target-language text, in batches.

Specs understood by :func:`load_translator`:

* ``apertium`` - rule-based Apertium from Debian (``apertium`` + a pair such as
  ``apertium-eng-spa``); offline, CPU-only, fast. One process per batch: sentences are
  sent as paragraphs (blank-line separated), which Apertium treats as sentence boundaries
  and passes through, so each output paragraph is one input sentence. The count is checked
  and, should it ever differ, the batch is retranslated one sentence at a time.
* ``hf:ID_OR_PATH`` - a transformers seq2seq model (NLLB-200, M2M-100, Marian).
* ``provided:FILE`` - translations the user brings (TSV ``id<TAB>translation``, JSONL
  ``{"id": ..., "translation": ...}``, or plain text with one line per source sentence).

:func:`translate_items` fills ``item.target``; :func:`back_translate` stores the target
translated back into the source language in ``item.meta["back_translation"]``, which the
alignment refinement compares with the source.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
from functools import cached_property
from pathlib import Path
from typing import Protocol, Sequence

from tqdm.auto import tqdm

from core.data import Item
from core.errors import LabelBridgeError
from core.tokenize import tokenize_batch

__all__ = [
    "TranslatorUnavailable",
    "TranslationError",
    "UnknownLanguage",
    "Translator",
    "ApertiumTranslator",
    "HFTranslator",
    "ProvidedTranslator",
    "language_codes",
    "nllb_code",
    "m2m_code",
    "load_translator",
    "translate_items",
    "back_translate",
    "pivot_items",
]

log = logging.getLogger(__name__)


class TranslatorUnavailable(RuntimeError):
    """The translator cannot run here: a program, language pair or model is missing."""


class TranslationError(LabelBridgeError):
    """Bad input or output: a missing provided translation, a malformed file, a failed run."""


class UnknownLanguage(TranslationError):
    """A language code that none of the code tables knows."""


class Translator(Protocol):
    name: str

    def translate(self, texts: list[str], src: str, tgt: str) -> list[str]:
        """One translation per text, in order."""
        ...


# --- language codes -------------------------------------------------------------------

# ISO 639-1 -> (ISO 639-3, NLLB-200 code). NLLB uses the individual language where ISO
# 639-1 names a macrolanguage (ar -> arb, fa -> pes, ms -> zsm, sw -> swh, lv -> lvs).
_LANGUAGES: dict[str, tuple[str, str]] = {
    "af": ("afr", "afr_Latn"), "am": ("amh", "amh_Ethi"), "ar": ("ara", "arb_Arab"),
    "az": ("aze", "azj_Latn"), "be": ("bel", "bel_Cyrl"), "bg": ("bul", "bul_Cyrl"),
    "bm": ("bam", "bam_Latn"), "bn": ("ben", "ben_Beng"), "bs": ("bos", "bos_Latn"),
    "ca": ("cat", "cat_Latn"), "cs": ("ces", "ces_Latn"), "cy": ("cym", "cym_Latn"),
    "da": ("dan", "dan_Latn"), "de": ("deu", "deu_Latn"), "ee": ("ewe", "ewe_Latn"),
    "el": ("ell", "ell_Grek"), "en": ("eng", "eng_Latn"), "eo": ("epo", "epo_Latn"),
    "es": ("spa", "spa_Latn"), "et": ("est", "est_Latn"), "eu": ("eus", "eus_Latn"),
    "fa": ("fas", "pes_Arab"), "fi": ("fin", "fin_Latn"), "fr": ("fra", "fra_Latn"),
    "ga": ("gle", "gle_Latn"), "gl": ("glg", "glg_Latn"), "gu": ("guj", "guj_Gujr"),
    "ha": ("hau", "hau_Latn"), "he": ("heb", "heb_Hebr"), "hi": ("hin", "hin_Deva"),
    "hr": ("hrv", "hrv_Latn"), "ht": ("hat", "hat_Latn"), "hu": ("hun", "hun_Latn"),
    "hy": ("hye", "hye_Armn"), "id": ("ind", "ind_Latn"), "ig": ("ibo", "ibo_Latn"),
    "is": ("isl", "isl_Latn"), "it": ("ita", "ita_Latn"), "ja": ("jpn", "jpn_Jpan"),
    "jv": ("jav", "jav_Latn"), "ka": ("kat", "kat_Geor"), "kk": ("kaz", "kaz_Cyrl"),
    "km": ("khm", "khm_Khmr"), "kn": ("kan", "kan_Knda"), "ko": ("kor", "kor_Hang"),
    "lg": ("lug", "lug_Latn"), "ln": ("lin", "lin_Latn"), "lo": ("lao", "lao_Laoo"),
    "lt": ("lit", "lit_Latn"), "lv": ("lav", "lvs_Latn"), "mg": ("mlg", "plt_Latn"),
    "mk": ("mkd", "mkd_Cyrl"), "ml": ("mal", "mal_Mlym"), "mr": ("mar", "mar_Deva"),
    "ms": ("msa", "zsm_Latn"), "mt": ("mlt", "mlt_Latn"), "my": ("mya", "mya_Mymr"),
    "nb": ("nob", "nob_Latn"), "ne": ("nep", "npi_Deva"), "nl": ("nld", "nld_Latn"),
    "nn": ("nno", "nno_Latn"), "no": ("nor", "nob_Latn"), "ny": ("nya", "nya_Latn"),
    "oc": ("oci", "oci_Latn"), "om": ("orm", "gaz_Latn"), "pa": ("pan", "pan_Guru"),
    "pl": ("pol", "pol_Latn"), "ps": ("pus", "pbt_Arab"), "pt": ("por", "por_Latn"),
    "ro": ("ron", "ron_Latn"), "ru": ("rus", "rus_Cyrl"), "rw": ("kin", "kin_Latn"),
    "sd": ("snd", "snd_Arab"), "si": ("sin", "sin_Sinh"), "sk": ("slk", "slk_Latn"),
    "sl": ("slv", "slv_Latn"), "sn": ("sna", "sna_Latn"), "so": ("som", "som_Latn"),
    "sq": ("sqi", "als_Latn"), "sr": ("srp", "srp_Cyrl"), "sv": ("swe", "swe_Latn"),
    "sw": ("swa", "swh_Latn"), "ta": ("tam", "tam_Taml"), "te": ("tel", "tel_Telu"),
    "tg": ("tgk", "tgk_Cyrl"), "th": ("tha", "tha_Thai"), "ti": ("tir", "tir_Ethi"),
    "tl": ("tgl", "tgl_Latn"), "tn": ("tsn", "tsn_Latn"), "tr": ("tur", "tur_Latn"),
    "tw": ("twi", "twi_Latn"), "uk": ("ukr", "ukr_Cyrl"), "ur": ("urd", "urd_Arab"),
    "uz": ("uzb", "uzn_Latn"), "vi": ("vie", "vie_Latn"), "wo": ("wol", "wol_Latn"),
    "xh": ("xho", "xho_Latn"), "yo": ("yor", "yor_Latn"), "zh": ("zho", "zho_Hans"),
    "zu": ("zul", "zul_Latn"),
}
# Languages with only an ISO 639-3 code (MasakhaNER's fon, luo, mos among them).
_ONLY_639_3: dict[str, str] = {
    "ast": "ast_Latn", "ceb": "ceb_Latn", "fon": "fon_Latn", "fuv": "fuv_Latn", "ilo": "ilo_Latn",
    "kam": "kam_Latn", "kea": "kea_Latn", "kik": "kik_Latn", "kmb": "kmb_Latn", "luo": "luo_Latn",
    "mos": "mos_Latn", "nso": "nso_Latn", "pap": "pap_Latn", "umb": "umb_Latn",
}
# ISO 639-2/B (bibliographic) codes and individual-language codes -> the table's 639-1 key.
_ALIASES: dict[str, str] = {
    "ger": "de", "fre": "fr", "dut": "nl", "chi": "zh", "cze": "cs", "gre": "el", "per": "fa", "rum": "ro",
    "slo": "sk", "wel": "cy", "baq": "eu", "ice": "is", "arm": "hy", "geo": "ka", "mac": "mk", "alb": "sq",
    "bur": "my", "may": "ms", "arb": "ar", "pes": "fa", "zsm": "ms", "swh": "sw", "lvs": "lv", "gaz": "om",
    "npi": "ne", "als": "sq", "cmn": "zh", "uzn": "uz", "azj": "az", "pbt": "ps", "plt": "mg",
}
_ISO3_TO_ISO1 = {iso3: iso1 for iso1, (iso3, _) in _LANGUAGES.items()}
_NLLB_CODE = re.compile(r"[a-z]{3}_[A-Z][a-z]{3}")


def language_codes(lang: str) -> tuple[str | None, str]:
    """(ISO 639-1 or None, ISO 639-3) for a 639-1/639-3/639-2B code or a locale like ``en_US``."""
    base = lang.strip().replace("-", "_").split("_")[0].lower()
    base = _ALIASES.get(base, _ISO3_TO_ISO1.get(base, base))
    if base in _LANGUAGES:
        return base, _LANGUAGES[base][0]
    if base in _ONLY_639_3:
        return None, base
    raise UnknownLanguage(
        f"unknown language code {lang!r}; use an ISO 639-1 or 639-3 code such as 'en', 'spa', 'yor'"
    )


def nllb_code(lang: str) -> str:
    """The NLLB-200 code (``spa_Latn``) for an ISO code; NLLB codes pass through unchanged."""
    if _NLLB_CODE.fullmatch(lang):
        return lang
    try:
        iso1, iso3 = language_codes(lang)
    except UnknownLanguage:
        raise UnknownLanguage(f"no NLLB-200 code known for {lang!r}; pass the NLLB code itself (e.g. 'spa_Latn')") from None
    return _LANGUAGES[iso1][1] if iso1 else _ONLY_639_3[iso3]


def m2m_code(lang: str) -> str:
    """The M2M-100 code: ISO 639-1 where the language has one, else ISO 639-3 (``ast``, ``ceb``)."""
    iso1, iso3 = language_codes(lang)
    return iso1 or iso3


def _variant(lang: str) -> str:
    """The locale part of ``en_US`` / ``en-US`` (``US``), or ''."""
    parts = lang.strip().replace("-", "_").split("_", 1)
    return parts[1] if len(parts) == 2 else ""


# --- Apertium -------------------------------------------------------------------------

_APERTIUM_MARKS = "*#@"


def _strip_apertium_marks(translation: str, source: str) -> str:
    """Remove Apertium's unknown-word (*), untranslated-lemma (@) and generation (#) marks.

    Marks sit before a word (``*Ponnambalam``), inside one (``-40*ºC``, ``PPE-*DE``) or in
    a multiword lemma (``move# away``). A mark character the source never contains is
    removed everywhere; one the source does contain (``@user``, ``#hashtag``) is removed
    only before words that the source does not write with it. Whitespace runs are collapsed.
    """
    for mark in _APERTIUM_MARKS:
        if mark not in source:
            translation = translation.replace(mark, "")
        else:
            translation = re.sub(
                re.escape(mark) + r"(\w+)",
                lambda m: m.group(0) if m.group(0) in source else m.group(1),
                translation,
            )
    return " ".join(translation.split())


class ApertiumTranslator:
    name = "apertium"

    def __init__(self, executable: str = "apertium"):
        path = shutil.which(executable)
        if path is None:
            raise TranslatorUnavailable(
                "Apertium is not installed: apt-get install apertium apertium-eng-spa "
                "(plus the pair packages you need, e.g. apertium-eng-cat, apertium-en-gl)"
            )
        self.executable = path

    @cached_property
    def modes(self) -> list[str]:
        """Installed translation directions (``eng-spa``, ``en-gl``, ``spa-eng_US`` ...)."""
        done = subprocess.run([self.executable, "-l"], capture_output=True, text=True)
        return sorted(line.strip() for line in done.stdout.splitlines() if line.strip())

    def mode(self, src: str, tgt: str) -> str:
        """The installed mode for src -> tgt (3-letter names first, then 2-letter ones)."""
        (src1, src3), (tgt1, tgt3) = language_codes(src), language_codes(tgt)
        suffix = f"_{_variant(tgt)}" if _variant(tgt) else ""
        candidates = [f"{s}-{t}{suffix}" for s in (src3, src1) if s for t in (tgt3, tgt1) if t]
        for candidate in candidates:
            if candidate in self.modes:
                return candidate
        older = f" (older pairs: apertium-{src1}-{tgt1})" if src1 and tgt1 else ""
        raise TranslatorUnavailable(
            f"Apertium has no {src}->{tgt} pair (tried {', '.join(candidates)}; installed: "
            f"{', '.join(self.modes) or 'none'}); install the Debian package apertium-{src3}-{tgt3} "
            f"or apertium-{tgt3}-{src3}{older} if Apertium has this pair"
        )

    def _run(self, mode: str, text: str) -> str:
        done = subprocess.run([self.executable, "-f", "txt", mode], input=text, capture_output=True, text=True)
        if done.returncode != 0:
            raise TranslationError(f"apertium {mode} failed (exit {done.returncode}): {done.stderr.strip()[:500]}")
        return done.stdout

    def translate(self, texts: list[str], src: str, tgt: str) -> list[str]:
        mode = self.mode(src, tgt)
        # One line per sentence; a blank line between sentences is a paragraph break that
        # Apertium keeps, so the output splits back into the same sentences.
        clean = [" ".join(t.split()) for t in texts]
        todo = [i for i, t in enumerate(clean) if t]
        out = [""] * len(texts)
        if not todo:
            return out
        raw = self._run(mode, "\n\n".join(clean[i] for i in todo) + "\n")
        parts = re.split(r"\n[ \t]*\n", raw.strip("\n"))
        if len(parts) != len(todo):
            log.warning(
                "apertium %s returned %d paragraphs for %d sentences; translating them one by one",
                mode, len(parts), len(todo),
            )
            parts = [self._run(mode, clean[i] + "\n") for i in todo]
        for i, part in zip(todo, parts):
            out[i] = _strip_apertium_marks(part, clean[i])
        return out


# --- transformers seq2seq -------------------------------------------------------------


class HFTranslator:
    """A transformers encoder-decoder model (NLLB-200, M2M-100, Marian, or any seq2seq LM).

    NLLB and M2M are many-to-many: the tokenizer's ``src_lang`` marks the input language
    and ``forced_bos_token_id`` makes the decoder start in the target language. Multi-target
    Marian models get their ``>>xxx<<`` target prefix. Inputs are sorted by length inside a
    call so batches carry little padding.
    """

    def __init__(
        self,
        model: str,
        batch_size: int = 16,
        num_beams: int = 4,
        max_length: int = 256,
        device: str | None = None,
    ):
        import torch
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model)
            self.model = AutoModelForSeq2SeqLM.from_pretrained(model)
        except (OSError, ValueError) as exc:
            raise TranslatorUnavailable(f"cannot load translation model {model!r}: {exc}") from exc
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device).eval()
        self.name = f"hf:{Path(model).name if Path(model).exists() else model}"
        self.batch_size = batch_size
        self.num_beams = num_beams
        self.max_length = max_length
        if self._has_token("eng_Latn"):
            self.family = "nllb"
        elif self._has_token("__en__"):
            self.family = "m2m"
        elif any(tok.startswith(">>") and tok.endswith("<<") for tok in self.tokenizer.get_vocab()):
            self.family = "marian-multi"
        else:
            self.family = "plain"  # the model knows its one direction (e.g. Helsinki-NLP/opus-mt-en-es)

    def _has_token(self, token: str) -> bool:
        ids = self.tokenizer.convert_tokens_to_ids([token])
        return bool(ids) and ids[0] is not None and ids[0] != self.tokenizer.unk_token_id

    def _language_token(self, token: str, lang: str) -> int:
        if not self._has_token(token):
            raise UnknownLanguage(f"model {self.name} has no language token {token!r} for {lang!r}")
        return self.tokenizer.convert_tokens_to_ids(token)

    def generation_setup(self, src: str, tgt: str) -> tuple[str, dict]:
        """(prefix added to each input, extra generate() arguments) for this language pair."""
        if self.family in ("nllb", "m2m"):
            code = nllb_code if self.family == "nllb" else m2m_code
            wrap = (lambda c: c) if self.family == "nllb" else (lambda c: f"__{c}__")
            src_code, tgt_code = code(src), code(tgt)
            self._language_token(wrap(src_code), src)
            if not hasattr(self.tokenizer, "src_lang"):
                raise TranslatorUnavailable(f"the tokenizer of {self.name} cannot mark the source language (no src_lang)")
            self.tokenizer.src_lang = src_code
            return "", {"forced_bos_token_id": self._language_token(wrap(tgt_code), tgt)}
        if self.family == "marian-multi":
            iso1, iso3 = language_codes(tgt)
            for token in (f">>{iso3}<<", f">>{iso1}<<"):
                if self._has_token(token):
                    return f"{token} ", {}
            raise UnknownLanguage(f"multi-target model {self.name} has no >>{iso3}<< target token for {tgt!r}")
        return "", {}

    def translate(self, texts: list[str], src: str, tgt: str) -> list[str]:
        import torch

        prefix, extra = self.generation_setup(src, tgt)
        order = sorted((i for i, t in enumerate(texts) if t.strip()), key=lambda i: len(texts[i]))
        out = [""] * len(texts)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            enc = self.tokenizer(
                [prefix + texts[i] for i in chunk],
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=self.max_length,
            ).to(self.device)
            with torch.no_grad():
                generated = self.model.generate(**enc, num_beams=self.num_beams, max_length=self.max_length, **extra)
            for i, text in zip(chunk, self.tokenizer.batch_decode(generated, skip_special_tokens=True)):
                out[i] = " ".join(text.split())
        return out


# --- translations the user brings -----------------------------------------------------


class ProvidedTranslator:
    """Translations read from a file: matched by item id when the file has ids, else by line.

    ``.tsv``: ``id<TAB>translation`` (an ``id<TAB>translation`` header line is skipped);
    ``.jsonl``/``.json``: one ``{"id": ..., "translation": ...}`` object per line; any other
    suffix: plain text, line k is the translation of the k-th source sentence.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.name = f"provided:{self.path.name}"
        if not self.path.is_file():
            raise TranslatorUnavailable(f"translation file {self.path} does not exist")
        self.by_id: dict[str, str] | None = None
        self.lines: list[str] | None = None
        suffix = self.path.suffix.lower()
        text = self.path.read_text(encoding="utf-8")
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()  # the final newline
        lines = [line.rstrip("\r") for line in lines]
        if suffix in (".tsv", ".jsonl", ".json"):
            self.by_id = self._read_keyed(lines, suffix)
        else:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    raise TranslationError(f"{self.path}:{number}: empty translation")
            self.lines = lines

    def _read_keyed(self, lines: list[str], suffix: str) -> dict[str, str]:
        by_id: dict[str, str] = {}
        for number, line in enumerate(lines, 1):
            where = f"{self.path}:{number}"
            if not line.strip():
                continue
            if suffix == ".tsv":
                key, sep, translation = line.partition("\t")
                if not sep:
                    raise TranslationError(f"{where}: expected id<TAB>translation, found no tab")
                if number == 1 and (key.strip().lower(), translation.strip().lower()) == ("id", "translation"):
                    continue
            else:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise TranslationError(f"{where}: not valid JSON ({exc.msg})") from None
                if not isinstance(record, dict) or "id" not in record or not isinstance(record.get("translation"), str):
                    raise TranslationError(f'{where}: expected {{"id": ..., "translation": "..."}}')
                key, translation = record["id"], record["translation"]
            key = str(key).strip()
            if not key:
                raise TranslationError(f"{where}: empty id")
            if not translation.strip():
                raise TranslationError(f"{where}: empty translation for id {key}")
            if key in by_id:
                raise TranslationError(f"{where}: id {key} appears twice")
            by_id[key] = translation.strip()
        return by_id

    def lookup(self, items: Sequence[Item]) -> list[str]:
        """The translation of each item; raises TranslationError naming the items without one."""
        if self.by_id is not None:
            missing = [it.id for it in items if it.id not in self.by_id]
            if missing:
                raise TranslationError(
                    f"{self.path}: no translation for item {missing[0]}"
                    f"{f' and {len(missing) - 1} more' if len(missing) > 1 else ''}"
                )
            return [self.by_id[it.id] for it in items]
        return self._by_line([it.id for it in items])

    def _by_line(self, names: Sequence[str]) -> list[str]:
        assert self.lines is not None
        if len(self.lines) != len(names):
            first_missing = f"; item {names[len(self.lines)]} has none" if len(names) > len(self.lines) else ""
            raise TranslationError(
                f"{self.path} has {len(self.lines)} lines for {len(names)} sentences{first_missing} "
                "(a plain-text translation file needs exactly one line per source sentence, in order)"
            )
        return [line.strip() for line in self.lines]

    def translate(self, texts: list[str], src: str, tgt: str) -> list[str]:
        """Line files only: text k gets line k, so call it with all sentences at once."""
        if self.by_id is not None:
            raise TranslationError(f"{self.path} matches translations by item id; use translate_items")
        return self._by_line([f"sentence {k + 1}" for k in range(len(texts))])


# --- building and applying ------------------------------------------------------------


def load_translator(spec: str, **options) -> Translator:
    """Build a translator from ``apertium``, ``hf:ID_OR_PATH`` or ``provided:FILE``.

    ``options`` go to the HF translator (batch_size, num_beams, max_length, device).
    """
    kind, sep, target = spec.partition(":")
    if kind == "hf" and sep and target:
        return HFTranslator(target, **options)
    if options:
        raise TranslationError(f"options {sorted(options)} apply to hf: translators only, not {spec!r}")
    if spec == "apertium":
        return ApertiumTranslator()
    if kind == "provided" and sep and target:
        return ProvidedTranslator(target)
    raise TranslationError(f"unknown translator {spec!r}; expected 'apertium', 'hf:ID_OR_PATH' or 'provided:FILE'")


def _translate_all(
    items: Sequence[Item], texts: list[str], translator: Translator, src: str, tgt: str, batch_size: int, desc: str
) -> list[str]:
    if isinstance(translator, ProvidedTranslator):
        return translator.lookup(items)
    out: list[str] = []
    with tqdm(total=len(texts), desc=desc, unit="sent", disable=len(texts) <= batch_size) as bar:
        for start in range(0, len(texts), batch_size):
            chunk = texts[start : start + batch_size]
            translated = translator.translate(chunk, src, tgt)
            if len(translated) != len(chunk):
                raise TranslationError(f"{translator.name} returned {len(translated)} translations for {len(chunk)} sentences")
            out.extend(translated)
            bar.update(len(chunk))
    return out


def translate_items(items: list[Item], translator: Translator, src: str, tgt: str, batch_size: int = 64) -> list[Item]:
    """Items with ``target`` set to the tokenized translation of their source text.

    A new target invalidates earlier target spans and alignment links, so both are cleared;
    ``meta["translator"]`` records which translator wrote the target.
    """
    texts = [it.source.text for it in items]
    translations = _translate_all(items, texts, translator, src, tgt, batch_size, f"translate {src}->{tgt}")
    targets = tokenize_batch(translations, tgt)
    return [
        it.with_(target=target, target_spans=[], alignment=[], meta={**it.meta, "translator": translator.name})
        for it, target in zip(items, targets)
    ]


def back_translate(items: list[Item], translator: Translator, src: str, tgt: str, batch_size: int = 64) -> list[Item]:
    """Items with ``meta["back_translation"]``: the target text translated back (tgt -> src)."""
    missing = [it.id for it in items if it.target is None]
    if missing:
        raise TranslationError(f"item {missing[0]} has no target sentence to back-translate")
    texts = [it.target.text for it in items]  # type: ignore[union-attr]
    back = _translate_all(items, texts, translator, tgt, src, batch_size, f"back-translate {tgt}->{src}")
    return [it.with_(meta={**it.meta, "back_translation": text}) for it, text in zip(items, back)]


def pivot_items(items: list[Item], translator: Translator, src: str, tgt: str, batch_size: int = 64) -> list[Item]:
    """Translate-test: items whose *source* (the pivot, language ``src``) is the tokenized
    translation of their target (the original sentence, language ``tgt``, kept as written).

    A new pivot invalidates its spans and the alignment links, so both are cleared;
    ``meta["pivot_translator"]`` records which translator wrote it.
    """
    missing = [it.id for it in items if it.target is None or not it.target.tokens]
    if missing:
        raise TranslationError(f"item {missing[0]} has no original (target-language) sentence to translate")
    texts = [it.target.text for it in items]  # type: ignore[union-attr]
    translations = _translate_all(items, texts, translator, tgt, src, batch_size, f"translate {tgt}->{src}")
    pivots = tokenize_batch(translations, src)
    return [
        it.with_(source=pivot, source_spans=[], alignment=[], meta={**it.meta, "pivot_translator": translator.name})
        for it, pivot in zip(items, pivots)
    ]
