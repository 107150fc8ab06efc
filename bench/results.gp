# bench/results.svg from the data bench/report.lua writes (bench/run calls it):
#   gnuplot -e "data='build/bench/plot.dat'; out='bench/results.svg'" bench/results.gp
# Two bar charts over the same rows: requests/s (median over rounds) and
# client-side instructions per call (callgrind). Rows not measured are left out.
set terminal svg size 1000,900 dynamic font "sans,11" background rgb "white"
set output out
set datafile separator "\t"
set datafile missing "NaN"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.8
set grid ytics lc rgb "#dddddd"
set xtics rotate by -35 left nomirror font "sans,10"
set ytics nomirror
set key off
set bmargin 6
set lmargin 12
set format y "%.0f"
set multiplot layout 2,1 title "toolzz against raw libcurl and the Lua peers (higher is better above, lower below)"
set title "Requests per second, sequential against the local stand-in (batch rows: 1,000 items)"
set ylabel "req/s"
set logscale y
set format y "%.0s%c"
plot data using 2:xtic(1) lc rgb "#3b7dd8", \
     '' using 0:2:(sprintf("%.0f", $2)) with labels offset 0,0.6 font "sans,9"
set title "Instructions per call, client side (callgrind; the curl command counts its shell and curl processes)"
set ylabel "instructions"
set logscale y
set format y "%.0s%c"
plot data using 3:xtic(1) lc rgb "#d8743b", \
     '' using 0:3:(sprintf("%.0fk", $3 / 1000)) with labels offset 0,0.6 font "sans,9"
unset multiplot
