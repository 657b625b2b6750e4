# Seeds for fuzz_selected_tags: selected_tags.csv files shaped like SmilingWolf's WD14 v3 taggers'
# (header tag_id,name,category,count; 4 ratings in category 9 first, then general tags in 0 and
# characters in 4), with the quoting a csv writer uses for names holding commas or quotes, unicode
# names, CRLF line ends, a BOM, blank lines, an extra column and a file without tag_id.
# Usage: python3 fuzz_selected_tags.py OUT_DIR REPO_ROOT
import csv, io, os, sys

ratings = [(9999999, "general", 9, 807090), (9999998, "sensitive", 9, 3051764),
           (9999997, "questionable", 9, 611540), (9999996, "explicit", 9, 374043)]
general = [(470575, "1girl", 0, 4225150), (212816, "solo", 0, 3538940), (16867, "long_hair", 0, 2916530),
           (1821, "smile", 0, 1498567), (15080, ":d", 0, 417034), (1575, "^_^", 0, 48023),
           (13197, "looking_at_viewer", 0, 1839770), (400123, "star_(symbol)", 0, 108932)]
characters = [(14087, "hatsune_miku", 4, 112230), (1302, "hakurei_reimu", 4, 79410),
              (555555, "shiki_(senran_kagura)", 4, 1303)]
odd = [(777001, "tag, with comma", 0, 12), (777002, 'say "cheese"', 0, 7), (777003, "café_au_lait", 0, 5),
       (777004, "初音ミク", 4, 3), (777005, "🙂", 0, 2), (777006, "artist_name", 1, 40),
       (777007, "copyright_name", 3, 30), (777008, "highres", 5, 900)]


def write(name, rows, header=("tag_id", "name", "category", "count"), line_end="\n", prefix=""):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator=line_end)
    w.writerow(header)
    for r in rows:
        w.writerow(r)
    with open(os.path.join(sys.argv[1], name), "w", encoding="utf-8", newline="") as f:
        f.write(prefix + buf.getvalue())


out = sys.argv[1]
write("wd_v3_like.csv", ratings + general + characters)
write("quoted_unicode.csv", ratings + general[:3] + odd + characters[:1])
write("crlf.csv", ratings + general[:4], line_end="\r\n")
write("bom.csv", ratings[:2] + characters, prefix="\ufeff")
write("no_tag_id.csv", [r[1:] for r in ratings + general[:2]], header=("name", "category", "count"))
write("extra_column.csv", [r + ("x",) for r in ratings + general[:2]],
      header=("tag_id", "name", "category", "count", "note"))
with open(os.path.join(out, "blank_lines.csv"), "w", encoding="utf-8", newline="") as f:
    f.write("tag_id,name,category,count\n\n9999999,general,9,1\n\n470575,1girl,0,2\n\n")
with open(os.path.join(out, "multiline_quoted.csv"), "w", encoding="utf-8", newline="") as f:
    f.write('tag_id,name,category,count\r\n1,"two\r\nlines",0,3\r\n2,"a ""q"" b",4,1\r\n')
