"""The tour's words in German (``DE``, for ``gated tour --lang de``): the keys and placeholders of ``EN``."""

from __future__ import annotations

# The literal mirrors EN key for key, in the same order; tests/test_prose.py holds them together.
DE = {
    "title": "RNNs, LSTMs und GRUs in Bildern, live aus trainierten Netzen",
    "lead": [
        "Jede Abbildung auf dieser Seite ist eben erst entstanden, und zwar aus kleinen rekurrenten Netzen, die "
        "gated mit echten Daten trainiert hat: mit Amazon-Rezensionen zu Lebensmitteln, mit Shakespeares Dramen "
        "und mit dem Additionsproblem. Nichts davon ist eine Skizze; jede Zahl stammt aus einem Modell, das Sie "
        "selbst laden, Schritt für Schritt verfolgen und befragen können.",
        "Die Abschnitte folgen dem Aufbau des Leitfadens: zuerst die Stauchfunktionen, dann ein einfaches RNN "
        "beim Lesen einer Rezension und sein kurzes Gedächtnis, danach die Tore und der Zellzustand des LSTM, "
        "der Code eines einzelnen LSTM-Schritts, die GRU und schließlich ein Blick in das Innere trainierter "
        "Netze.",
    ],
    "contents": "Inhalt",
    "footer": "Erstellt von gated tour. Die Modelle liegen im Ordner models/ neben dieser Seite; probieren Sie "
              "'gated explain models/sentiment-lstm \"…\"' mit einer eigenen Rezension aus (die Modelle kennen "
              "nur englische Texte).",
    "labels": {
        "review": "die Rezension, die alle drei Netze lesen",
        "length": "Länge",
        "guide": "Schritt im Leitfaden",
        "unit": "Einheit",
        "temperature": "Temperatur",
        "model": "Modell",
        "metric": "Maß",
        "value": "Testergebnis",
        "baseline": "Vergleichswert",
        "seconds": "Trainingsdauer (s)",
        "none": "keiner",
        "metric.accuracy": "Genauigkeit",
        "metric.bits_per_char": "Bits pro Zeichen",
        "metric.mse": "mittlerer quadratischer Fehler",
        "baseline.tfidf+logreg": "TF-IDF + logistische Regression",
        "baseline.always predict 1.0": "immer 1,0 vorhersagen",
        "baseline.mean+std logreg": "Mittelwert und Streuung je Aufnahme + logistische Regression",
        "ngram": "{order}-Gramm-Kneser-Ney",
        "previous_cell": "der vorige Zellzustand",
        "baseline_model": "Vergleichsmodell",
        "line break": "einem Zeilenumbruch",
        "space": "einem Leerzeichen",
        "in_layer": "{count} in Schicht {layer}",
        "units_one_layer": "{hidden} Einheiten",
        "units_per_layer": "{layers} Schichten zu je {hidden} Einheiten",
        "and": "und",
        "speaker": "Sprecher",
        "beats": "Damit schlägt es das n-Gramm-Modell bereits.",
        "not_yet": "Damit reicht es noch nicht an das n-Gramm-Modell heran: Ein paar Minuten Training auf einer "
                   "CPU sind zu wenig, und die Stichproben unten sind entsprechend holprig; der volle Lauf von "
                   "'gated train charlm' (10 Minuten, samt Anpassung des n-Gramm-Modells) zieht daran vorbei.",
    },
    "guide_steps": [
        "Der vorige verborgene Zustand und die aktuelle Eingabe werden aneinandergehängt.",
        "Das Vergessenstor bestimmt für jeden einzelnen Wert, was vom alten Zellzustand erhalten bleibt.",
        "Das Eingangstor legt fest, welche neuen Werte geschrieben werden sollen.",
        "Der Kandidat schlägt diese neuen Werte vor, jeweils zwischen -1 und 1.",
        "Der neue Zellzustand: das Behaltene plus das neu Zugelassene.",
        "Das Ausgangstor wählt aus, was vom Zellzustand nach außen sichtbar wird.",
        "Der neue verborgene Zustand: der mit tanh gestauchte Zellzustand, gefiltert durch das Ausgangstor.",
    ],
    "squash": {
        "title": "1. Stauchfunktionen: tanh und Sigmoid",
        "body": [
            "In einem rekurrenten Netz wirken dieselben Gewichte immer wieder auf den Zustand ein. tanh hält "
            "jeden Wert zwischen -1 und 1; die Sigmoidfunktion hält ihn zwischen 0 und 1 und wirkt dadurch wie "
            "ein Drehregler von 'geschlossen' bis 'ganz offen'. Jedes Tor eines LSTM oder einer GRU ist eine "
            "solche Sigmoidfunktion.",
            "Ohne Stauchfunktion gerät wiederholtes Multiplizieren außer Kontrolle: Werden vier Werte sechsmal "
            "mit 3 multipliziert, wächst der größte auf {largest}, während der kleinste erst {smallest} "
            "erreicht: Die Abstände wachsen so schnell wie die Werte, und der größte übertönt alle übrigen. Folgt auf jede Multiplikation ein tanh, "
            "verlässt kein Wert jemals das Intervall (-1, 1); nach sechs Schritten beträgt der größte {kept}. Der Preis dafür ist Sättigung: Nach wenigen "
            "Schritten liegt selbst 0,03 dicht bei 1, wo die Kurve fast flach ist; Abschnitt 8 misst diesen "
            "Effekt in einem trainierten Netz.",
        ],
    },
    "rnn": {
        "title": "2. Ein einfaches RNN liest eine Rezension, Wort für Wort",
        "body": [
            "Ein RNN wandelt jedes Wort in einen Vektor um und liest diese Vektoren der Reihe nach. Bei jedem "
            "Wort verknüpft es den Vektor mit dem verborgenen Zustand, den es vom vorigen Wort mitgebracht hat, "
            "staucht das Ergebnis mit tanh und reicht es weiter: Der verborgene Zustand ist alles, was das Netz "
            "vom bisher Gelesenen im Gedächtnis behält.",
            "Die Rezensionen tragen eine von zwei Klassen, '{positive}' (die beste Bewertung) oder '{negative}'; "
            "{share} der Testrezensionen sind '{positive}'. "
            "Unten liest ein RNN, das auf den Lebensmittelrezensionen trainiert wurde, eine Rezension aus der "
            "Testmenge ({words} Wörter, richtige Klasse '{truth}'). Die obere Linie zeigt, was es antworten "
            "würde, wenn die Rezension an diesem Wort endete; die Heatmap zeigt die {units} verborgenen "
            "Einheiten, die bei seiner endgültigen Antwort am stärksten ins Gewicht fallen. Am Ende steht "
            "'{verdict}' mit p = {p}.",
            "Auf der gesamten Testmenge liegt dieses RNN in {rnn} der Fälle richtig. Zum Vergleich: Das auf "
            "dieselbe Weise trainierte LSTM erreicht {lstm}, die GRU {gru}, ein Bag-of-Words-Klassifikator mit "
            "TF-IDF {tfidf} und die Strategie, stets die häufigste Klasse zu antworten, {majority}.",
        ],
    },
    "memory": {
        "title": "3. Kurzzeitgedächtnis, nachgemessen",
        "body": [
            "Beim Training wird jedes Gewicht anhand des Gradienten angepasst, der durch die Zeit zu ihm "
            "zurückfließt. In einem einfachen RNN wird dieser Gradient bei jedem Schritt zurück erneut mit "
            "denselben Gewichten und mit der Steigung von tanh multipliziert und schrumpft daher rasch: Frühe "
            "Eingaben verändern die Gewichte kaum noch, und das Netz vergisst sie.",
            "Die erste Abbildung misst diesen Effekt an Netzen, die auf dem Additionsproblem (Länge {longest}) "
            "trainiert wurden: den Gradienten des Fehlers nach jeder einzelnen Eingabe, geteilt durch seine Größe "
            "an der letzten Eingabe. Aus {distance} Schritten Entfernung beträgt er beim RNN nur noch das "
            "{far_rnn}-Fache davon. Bei LSTM und GRU schrumpft er kaum: Über alle Abstände liegt sein Median "
            "bei {median_lstm} und {median_gru}.",
            "Am Additionsproblem wird sichtbar, was daraus folgt. In jeder Sequenz sind zwei Zahlen markiert; "
            "gefragt ist ihre Summe, und zwar erst am Ende. Ein Netz ohne Gedächtnis kann nichts Besseres tun, "
            "als jedes Mal 1,0 zu antworten, und macht damit einen Fehler von {baseline}. Bei gleichem "
            "Trainingsbudget für jede Länge fällt der Fehler bei diesen Längen unter {threshold}: RNN "
            "{solved_rnn}; LSTM {solved_lstm}; GRU {solved_gru}. Bei Länge {longest} "
            "betragen die Fehler {mse_rnn} (RNN), {mse_lstm} (LSTM) und {mse_gru} (GRU).",
        ],
    },
    "lstm": {
        "title": "4. Das LSTM: Tore und Zellzustand",
        "body": [
            "Ein LSTM führt einen zweiten Zustand mit, den Zellzustand. Er zieht sich durch die gesamte Sequenz "
            "und ändert sich nur auf zwei Arten: durch Multiplikation mit dem Vergessenstor und durch Addition "
            "neuer Werte. Gesteuert wird er von drei Sigmoid-Toren: Das Vergessenstor entscheidet, was bleibt, "
            "das Eingangstor, was hinzukommt, und das Ausgangstor, was als verborgener Zustand sichtbar wird.",
            "Hier liest das LSTM dieselbe Rezension und antwortet '{verdict}' (p = {p}; die richtige Klasse ist "
            "'{truth}'). Jedes Teilbild eines Tores zeigt den Mittelwert über alle Einheiten sowie die {units} "
            "Einheiten, die für das Urteil am meisten zählen; das Teilbild des Zellzustands zeigt, wie sich "
            "diese Einheiten von Wort zu Wort aufbauen.",
            "Über diese Wörter gemittelt liegt das Vergessenstor bei {forget_mean}: In {forget_open} aller Paare "
            "aus Einheit und Schritt ist es größer als 0,9, in {forget_closed} kleiner als 0,1. Die Wörter, die "
            "die Antwort am stärksten bewegt haben, sind {keys} (in Klammern die Änderung von p({target}), die "
            "jedes von ihnen bewirkt hat); ähnlich den Schlüsselwörtern, die einem Menschen von einer "
            "Rezension im Gedächtnis bleiben. Darunter ist jedes Wort nach dieser Änderung eingefärbt: rot, "
            "wenn es in Richtung '{target}' gedrängt hat, blau, wenn es davon weggeführt hat.",
        ],
    },
    "steps": {
        "title": "5. Ein LSTM-Schritt in Code und in Zahlen",
        "body": [
            "Der Leitfaden beschreibt einen LSTM-Schritt in sieben Zeilen Pseudocode. Die Zelle von gated ist "
            "genauso aufgebaut: Links stehen die Zeilen aus cells.py, die die einzelnen Schritte ausführen, "
            "rechts die Werte, die sie für drei Einheiten lieferten, als das LSTM das Wort '{word}' las (Wort "
            "{position} der Rezension), also jenes Wort, das seine Antwort am stärksten bewegt hat. Schritt 1 "
            "verbindet h und x so, wie es ein Matrixprodukt tut: W_ih x + W_hh h ist eine einzige Matrix, "
            "angewandt auf den verketteten Vektor [x, h].",
            "Ein Beispiel ist Einheit {unit}: Ihr Vergessenstor steht bei {f}, daher wird der alte Zellwert {c0} "
            "mit diesem Faktor multipliziert und so abgeschwächt; ihr Eingangstor steht bei {i} und der "
            "Kandidat bei {g}, daher kommt {i} × {g} = {ig} hinzu. Der neue Zellwert beträgt {c1}. Diese Zahlen "
            "stammen aus einem Aufruf von cells.lstm_cell mit den Gewichten des Modells und stimmen mit dem "
            "aufgezeichneten Lauf bis auf {drift} überein.",
        ],
    },
    "gru": {
        "title": "6. Die GRU: Reset-Tor und Update-Tor",
        "body": [
            "Eine GRU besitzt keinen eigenen Zellzustand; ihr Gedächtnis ist der verborgene Zustand selbst. Das "
            "Update-Tor übernimmt die Aufgaben von Vergessenstor und Eingangstor des LSTM zugleich, indem es für "
            "jede Einheit zwischen dem alten Wert und dem neuen Kandidaten abwägt. Das Reset-Tor bestimmt, wie "
            "viel von der Vergangenheit der Kandidat zu sehen bekommt.",
            "Bei derselben Rezension antwortet die GRU '{verdict}' (p = {p}). Ihr Update-Tor liegt im Mittel bei "
            "{update_mean}; in {update_keep} aller Werte (Einheiten × Schritte) behält die GRU mehr vom alten "
            "Zustand als vom Kandidaten (Update-Tor über 0,5). Das Reset-Tor liegt im Mittel bei {reset_mean}. "
            "Am stärksten beeinflusst haben ihre Antwort die Wörter {keys}. Eine laufende Vorhersage bewegt sich "
            "auch bei kleinen Wörtern: Eine solche Änderung gehört ebenso zum Zusammenhang, in dem das Wort "
            "steht, wie zum Wort selbst.",
        ],
    },
    "shakespeare": {
        "title": "7. Schreiben wie Shakespeare, Zeichen für Zeichen",
        "body": [
            "Ein LSTM aus {units}, dessen Toreingänge und "
            "Zellausgabe schichtweise normalisiert sind (Ba, Kiros und Hinton 2016), hat {seconds} Sekunden lang "
            "Shakespeares Dramen gelesen und dabei jeweils das nächste Zeichen vorhergesagt. Auf Text, den es "
            "nie gesehen hat, braucht es {bpc} Bits pro Zeichen, gegenüber {ngram_bpc} für ein {ngram}-Modell, "
            "das an denselben Text angepasst wurde, und {uniform} für gleichverteiltes Raten. {comparison}",
            "Zieht man Zeichen für Zeichen Stichproben aus seinen Vorhersagen, entsteht neuer Text. Bei "
            "Temperatur 0,5 geht "
            "das Modell auf Nummer sicher und wiederholt häufige Wörter; bei 1,0 wagt es mehr und erfindet öfter "
            "Wörter. Das Raster darunter färbt jedes Zeichen einer zurückgehaltenen Passage nach der "
            "Wahrscheinlichkeit ein, die das Modell ihm zugewiesen hatte, bevor es das Zeichen las: hell, wo der "
            "Text leicht vorherzusagen war, dunkel, wo er das Modell überrascht hat.",
        ],
    },
    "saturation": {
        "title": "8. Im Inneren eines trainierten LSTM: wie sich die Tore einpendeln",
        "body": [
            "Karpathy, Johnson und Fei-Fei (2015) untersuchten, wie oft ein Tor fast geschlossen (< 0,1) oder "
            "fast ganz offen (> 0,9) ist. Jeder Punkt steht für eine Einheit des Shakespeare-LSTM ({units}), "
            "gemessen über {steps} Zeichen zurückgehaltenen Texts. Ein Punkt weit rechts "
            "gehört zu einer Einheit, die meist über 0,9 liegt, ein Punkt weit oben zu einer, die meist unter "
            "0,1 liegt.",
            "Vergessenstore, die offen bleiben, tragen Information über weite Strecken. Einheiten, deren "
            "Vergessenstor in mehr als der Hälfte der Schritte über 0,9 liegt, gibt es {forget}; bei den "
            "Eingangstoren sind es {input}, bei den Ausgangstoren {output}.",
            "Die letzte Abbildung verfolgt eine einzelne Zelle (Einheit {unit}, diejenige mit der größten "
            "Schwankung) über eine Passage hinweg, eingefärbt nach dem tanh ihres Werts. Über den ganzen "
            "zurückgehaltenen Text ist sie direkt nach {high} am höchsten und direkt nach {low} am niedrigsten: "
            "Sie hat gelernt, etwas im Text zu verfolgen, ohne dass ihr jemand gesagt hätte, was.",
        ],
    },
    "speech": {
        "title": "9. Wer spricht hier?",
        "body": [
            "Auch Klang erreicht ein rekurrentes Netz als Folge, nur besteht sie nicht aus Wörtern, sondern aus "
            "kurzen Frames, von denen jeder in wenigen Zahlen zusammengefasst ist. In JapaneseVowels sprechen "
            "{speakers} Männer viele Male die japanischen Vokale /ae/; jeder Frame enthält 12 "
            "Cepstralkoeffizienten, die die Form des Spektrums über 25,6 ms beschreiben, und alle 6,4 ms beginnt "
            "ein neuer Frame. Das Netz soll erkennen, wer gerade spricht.",
            "Ein LSTM, das die Frames nur in einer Richtung liest und hier {seconds} Sekunden lang trainiert "
            "wurde, nennt bei {accuracy} der {test} Testaufnahmen den richtigen Mann. Eine logistische "
            "Regression, die von jeder Aufnahme nur Mittelwert und Streuung jedes Koeffizienten sieht und daher "
            "nichts über deren Reihenfolge weiß, kommt auf {baseline}; wer immer den häufigsten Sprecher nennt, "
            "auf {majority}.",
            "Unten hört es eine Testaufnahme von Sprecher {speaker}: {frames} Frames, {ms} ms Klang. Die obere "
            "Linie zeigt die Wahrscheinlichkeit, die es ihm gäbe, wenn die Aufnahme bei diesem Frame endete; "
            "darunter stehen Tore und Zellzustand der {units} Einheiten, die für seine Antwort am meisten "
            "zählen, ganz unten die gehörten Koeffizienten. Am Ende steht p = {p}, und ab Frame {settled} "
            "({settled_ms} ms nach Beginn) bleibt seine erste Wahl gleich. Sein Vergessenstor liegt bei dieser "
            "Aufnahme im Mittel bei {forget_mean}.",
            "Weil es nur vorwärts liest, kann es schon antworten, während jemand noch spricht, so wie 'gated "
            "listen' es mit den Frames eines Mikrofons tut: Nach der Hälfte jeder Testaufnahme ist seine "
            "Antwort bereits in {half} der Fälle richtig.",
        ],
    },
    "models": {
        "title": "10. Die Modelle hinter dieser Seite",
        "body": [
            "Die {count} Läufe unten hat diese Tour mit 'gated train' trainiert; jedes Ergebnis wurde auf den "
            "Testdaten gemessen und steht neben dem Vergleichswert aus demselben Lauf.",
        ],
    },
}
